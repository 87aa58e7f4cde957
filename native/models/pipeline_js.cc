// JS surface of a loaded Stable Diffusion folder: loadPipeline() resolves to a PipelineHandle
// whose methods are async jobs over the shared SdModels.
#include "addon_data.h"
#include "bindings.h"
#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/device.h"
#include "bridge/tensor_convert.h"
#include "models/sd_models.h"
#include "sampling/plan_js.h"
#include "erase/erasure_job.h"
#include "io/json.h"
#include "models/weights.h"

namespace lethe {

namespace {

void requireRank(const torch::Tensor& t, int64_t rank, const std::string& what, const std::string& layout) {
  if (t.dim() != rank) fail(codes::kShapeMismatch, what + " must be " + layout + ", got " + std::to_string(t.dim()) + " dimensions");
}

}  // namespace

SamplingPlan PlanFromJs(Napi::Value value) {
  if (!value.IsObject()) fail(codes::kBadArgument, "plan must be a sampling plan object");
  auto o = value.As<Napi::Object>();
  SamplingPlan plan;
  const std::string pred = OptionString(o, "predictionType", "epsilon");
  if (pred != "epsilon" && pred != "v_prediction") fail(codes::kBadArgument, "plan.predictionType must be epsilon or v_prediction");
  plan.vPrediction = pred == "v_prediction";
  plan.initNoiseSigma = OptionNumber(o, "initNoiseSigma", 1.0);
  Napi::Value clip = o.Get("clipSample");
  if (clip.IsNumber()) plan.clipSample = clip.As<Napi::Number>().DoubleValue();
  Napi::Value steps = o.Get("steps");
  if (!steps.IsArray() || steps.As<Napi::Array>().Length() == 0) fail(codes::kBadArgument, "plan.steps must be a non-empty array");
  auto arr = steps.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value sv = arr.Get(i);
    if (!sv.IsObject()) fail(codes::kBadArgument, "plan.steps[" + std::to_string(i) + "] must be an object");
    auto s = sv.As<Napi::Object>();
    PlanStep p;
    p.timestep = OptionNumber(s, "timestep", 0);
    p.cin = OptionNumber(s, "cin", 1);
    p.alpha = OptionNumber(s, "alpha", 1);
    p.sigma = OptionNumber(s, "sigma", 0);
    p.cx = OptionNumber(s, "cx", 0);
    p.ceps = OptionNumber(s, "ceps", 0);
    p.cx0 = OptionNumber(s, "cx0", 0);
    p.cx0prev = OptionNumber(s, "cx0prev", 0);
    p.cnoise = OptionNumber(s, "cnoise", 0);
    for (double v : {p.timestep, p.cin, p.alpha, p.sigma, p.cx, p.ceps, p.cx0, p.cx0prev, p.cnoise})
      if (!std::isfinite(v)) fail(codes::kBadArgument, "plan.steps[" + std::to_string(i) + "] has a non-finite coefficient");
    if (!plan.vPrediction && p.alpha == 0) fail(codes::kBadArgument, "plan.steps[" + std::to_string(i) + "].alpha must not be 0");
    plan.steps.push_back(p);
  }
  return plan;
}

namespace {

// A job over a loaded pipeline: holds the models alive and runs under inference mode.
class PipelineJob : public AsyncJob {
 public:
  PipelineJob(Napi::Env env, const char* name, std::shared_ptr<SdModels> models, Napi::Object options)
      : AsyncJob(env, name, options), models_(std::move(models)) {}

 protected:
  torch::Tensor onDevice(const torch::Tensor& t) const {
    return t.is_floating_point() ? t.to(models_->device, models_->dtype) : t.to(models_->device);
  }
  void checkFinite(const torch::Tensor& t, const std::string& what) const {
    if (!torch::isfinite(t).all().item<bool>())
      fail(codes::kNonFinite, what + " contains NaN or Inf (try float32, or check the inputs and the weights)");
  }
  std::shared_ptr<SdModels> models_;
};

class EncodeTextJob : public PipelineJob {
 public:
  EncodeTextJob(Napi::Env env, std::shared_ptr<SdModels> m, Napi::Object o) : PipelineJob(env, "lethe.encodeText", std::move(m), o) {
    ids_ = RequireTensor(o, "ids");
    requireRank(ids_, 2, "ids", "[batch, tokens]");
    if (ids_.scalar_type() != torch::kInt64 && ids_.scalar_type() != torch::kInt32) fail(codes::kBadArgument, "ids must be int64 or int32");
    skip_ = static_cast<int64_t>(OptionNumber(o, "skip", 0));
    Napi::Value fn = o.Get("finalNorm");
    final_norm_ = fn.IsBoolean() ? fn.As<Napi::Boolean>().Value() : true;
  }
  void Run() override {
    c10::InferenceMode guard;
    out_ = models_->textEncoder().forward(onDevice(ids_.to(torch::kInt64)), skip_, final_norm_).to(torch::kFloat32).cpu();
  }
  Napi::Value Result(Napi::Env env) override { return tensorToJs(env, out_); }

 private:
  torch::Tensor ids_, out_;
  int64_t skip_;
  bool final_norm_;
};

class PredictNoiseJob : public PipelineJob {
 public:
  PredictNoiseJob(Napi::Env env, std::shared_ptr<SdModels> m, Napi::Object o) : PipelineJob(env, "lethe.predictNoise", std::move(m), o) {
    sample_ = RequireTensor(o, "sample");
    timesteps_ = RequireTensor(o, "timesteps");
    context_ = RequireTensor(o, "context");
    if (sample_.dim() != 5) requireRank(sample_, 4, "sample", "[batch, channels, height, width] (a motion UNet also [batch, channels, frames, height, width])");
    requireRank(context_, 3, "context", "[batch, tokens, dim]");
    // A clip's context may also hold one prompt per frame (the UNet checks which).
    if (sample_.dim() == 4 && context_.size(0) != sample_.size(0)) fail(codes::kShapeMismatch, "context batch must equal sample batch");
  }
  void Run() override {
    c10::InferenceMode guard;
    auto& unet = models_->denoiser();
    if (sample_.size(1) != unet.inChannels())
      fail(codes::kShapeMismatch, "sample has " + std::to_string(sample_.size(1)) + " channels; this UNet takes " + std::to_string(unet.inChannels()));
    if (context_.size(2) != unet.crossAttentionDim())
      fail(codes::kShapeMismatch, "context dim " + std::to_string(context_.size(2)) + " does not match cross_attention_dim " + std::to_string(unet.crossAttentionDim()));
    out_ = unet.forward(onDevice(sample_), timesteps_.to(models_->device, torch::kFloat32), onDevice(context_)).to(torch::kFloat32).cpu();
  }
  Napi::Value Result(Napi::Env env) override { return tensorToJs(env, out_); }

 private:
  torch::Tensor sample_, timesteps_, context_, out_;
};

class VaeEncodeJob : public PipelineJob {
 public:
  VaeEncodeJob(Napi::Env env, std::shared_ptr<SdModels> m, Napi::Object o) : PipelineJob(env, "lethe.vaeEncode", std::move(m), o) {
    images_ = RequireTensor(o, "images");
    requireRank(images_, 4, "images", "[batch, 3, height, width] in [-1, 1]");
  }
  void Run() override {
    c10::InferenceMode guard;
    auto& vae = models_->autoencoder();
    if (images_.size(2) % vae.downscale() || images_.size(3) % vae.downscale())
      fail(codes::kShapeMismatch, "image height and width must be multiples of " + std::to_string(vae.downscale()));
    auto d = vae.encode(onDevice(images_));
    mean_ = d.mean.to(torch::kFloat32).cpu();
    logvar_ = d.logvar.to(torch::kFloat32).cpu();
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("mean", tensorToJs(env, mean_));
    o.Set("logvar", tensorToJs(env, logvar_));
    return o;
  }

 private:
  torch::Tensor images_, mean_, logvar_;
};

// latents -> decoder output; `scaled` latents are divided by scaling_factor first (the usual case),
// `toImage` maps [-1, 1] to [0, 1] and clamps as diffusers' image processor does.
// Latents [B, C, h, w] to images [B, 3, H, W]; clips [B, C, F, h, w] frame by frame (the VAE is
// per image, as diffusers' AnimateDiff decode is) to [B, F, 3, H, W].
torch::Tensor decodeLatents(SdModels& m, const torch::Tensor& latents, bool scaled, bool to_image) {
  auto& vae = m.autoencoder();
  torch::Tensor z = scaled ? latents / vae.scalingFactor() : latents;
  const bool clip = z.dim() == 5;
  const int64_t b = z.size(0), frames = clip ? z.size(2) : 1;
  if (clip) z = z.permute({0, 2, 1, 3, 4}).reshape({b * frames, z.size(1), z.size(3), z.size(4)});
  torch::Tensor x = vae.decode(z.to(m.device, m.dtype)).to(torch::kFloat32);
  if (clip) x = x.reshape({b, frames, x.size(1), x.size(2), x.size(3)});
  return (to_image ? (x / 2 + 0.5).clamp(0, 1) : x).cpu();
}

class VaeDecodeJob : public PipelineJob {
 public:
  VaeDecodeJob(Napi::Env env, std::shared_ptr<SdModels> m, Napi::Object o) : PipelineJob(env, "lethe.vaeDecode", std::move(m), o) {
    latents_ = RequireTensor(o, "latents");
    if (latents_.dim() != 5) requireRank(latents_, 4, "latents", "[batch, channels, height, width] or clips [batch, channels, frames, height, width]");
    Napi::Value s = o.Get("scaled");
    scaled_ = s.IsBoolean() ? s.As<Napi::Boolean>().Value() : true;
    Napi::Value t = o.Get("toImage");
    to_image_ = t.IsBoolean() ? t.As<Napi::Boolean>().Value() : false;
  }
  void Run() override {
    c10::InferenceMode guard;
    if (latents_.size(1) != models_->autoencoder().latentChannels())
      fail(codes::kShapeMismatch, "latents have " + std::to_string(latents_.size(1)) + " channels; this VAE takes " +
                                      std::to_string(models_->autoencoder().latentChannels()));
    out_ = decodeLatents(*models_, latents_, scaled_, to_image_);
  }
  Napi::Value Result(Napi::Env env) override { return tensorToJs(env, out_); }

 private:
  torch::Tensor latents_, out_;
  bool scaled_, to_image_;
};

// Text-to-image sampling with classifier-free guidance batched: one UNet call per step on
// [uncond; cond]. Initial latents and DDPM noise come from torch's CPU generator seeded with
// `seed`, which draws the same numbers as diffusers with torch.Generator("cpu").manual_seed(seed).
class SampleJob : public PipelineJob {
 public:
  SampleJob(Napi::Env env, std::shared_ptr<SdModels> m, Napi::Object o) : PipelineJob(env, "lethe.sample", std::move(m), o) {
    plan_ = PlanFromJs(o.Get("plan"));
    cond_ = RequireTensor(o, "cond");
    uncond_ = OptionTensor(o, "uncond");
    latents_ = OptionTensor(o, "latents");
    guidance_ = OptionNumber(o, "guidance", 7.5);
    seed_ = static_cast<uint64_t>(OptionNumber(o, "seed", 0));
    Napi::Value d = o.Get("decode");
    decode_ = d.IsBoolean() && d.As<Napi::Boolean>().Value();
    requireRank(cond_, 3, "cond", "[batch, tokens, dim]");
    if (uncond_.defined() && uncond_.sizes() != cond_.sizes()) fail(codes::kShapeMismatch, "uncond must have the shape of cond");
    // Clips [batch, channels, frames, height, width] need a motion UNet (checked in Run).
    if (latents_.defined()) {
      if (latents_.dim() != 5) requireRank(latents_, 4, "latents", "[batch, channels, height, width] (clips: [batch, channels, frames, height, width])");
      if (latents_.size(0) != cond_.size(0)) fail(codes::kShapeMismatch, "latents batch must equal the number of prompts");
    } else {
      Napi::Value shape = o.Get("shape");
      shape_ = shapeFromJs(shape, "shape");
      if ((shape_.size() != 4 && shape_.size() != 5) || shape_[0] != cond_.size(0))
        fail(codes::kShapeMismatch, "shape must be [batch, channels, height, width] (clips: [batch, channels, frames, height, width]) with batch = prompts");
    }
    if (!std::isfinite(guidance_)) fail(codes::kBadArgument, "guidance must be finite");
  }
  void Run() override {
    c10::InferenceMode guard;
    auto& unet = models_->denoiser();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_);
    auto cpu32 = torch::TensorOptions().dtype(torch::kFloat32);
    torch::Tensor x = latents_.defined() ? latents_ : at::randn(shape_, gen, cpu32);
    if (x.dim() == 5 && !unet.hasMotion()) fail(codes::kShapeMismatch, "clip latents need a motion adapter (this UNet makes images)");
    if (x.size(1) != unet.inChannels()) fail(codes::kShapeMismatch, "latents have " + std::to_string(x.size(1)) + " channels; this UNet takes " + std::to_string(unet.inChannels()));
    const bool guided = uncond_.defined() && guidance_ != 1.0;
    torch::Tensor context = onDevice(guided ? torch::cat({uncond_, cond_}) : cond_);
    if (context.size(2) != unet.crossAttentionDim())
      fail(codes::kShapeMismatch, "prompt embeddings of dim " + std::to_string(context.size(2)) + " do not match cross_attention_dim " + std::to_string(unet.crossAttentionDim()));
    auto model = [&](const torch::Tensor& xin, double t) {
      torch::Tensor ts = torch::full({1}, t, torch::TensorOptions().dtype(torch::kFloat32).device(models_->device));
      if (!guided) return unet.forward(xin, ts, context);
      auto out = unet.forward(torch::cat({xin, xin}), ts, context).chunk(2);
      return out[0] + guidance_ * (out[1] - out[0]);
    };
    auto noise = [&](const torch::Tensor& like) { return at::randn(like.sizes(), gen, cpu32).to(like.device(), like.scalar_type()); };
    const int64_t total = static_cast<int64_t>(plan_.steps.size());
    auto afterStep = [&](size_t i) {
      ThrowIfCancelled();
      Report({"sample", static_cast<int64_t>(i) + 1, total, {}});
    };
    out_ = RunPlan(plan_, onDevice(x), model, noise, afterStep);
    checkFinite(out_, "the sampled latents");
    out_ = out_.to(torch::kFloat32).cpu();
    if (decode_) images_ = decodeLatents(*models_, out_, true, true);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("latents", tensorToJs(env, out_));
    if (images_.defined()) o.Set("images", tensorToJs(env, images_));
    return o;
  }

 private:
  SamplingPlan plan_;
  torch::Tensor cond_, uncond_, latents_, out_, images_;
  std::vector<int64_t> shape_;
  double guidance_;
  uint64_t seed_;
  bool decode_;
};

// Adds a delta file to the model (an erased model = base + deltas, docs/architecture.md "Delta
// files"): `unet.<key>` and `text_encoder.<key>` tensors are added to those weights; the
// `extra.prompt_memory.*` tensors become memory tokens of cross-attention layers — `.k` / `.v`
// shared by the layers the metadata's `prompt_memory_layers` (a JSON list of attn2 module names)
// names, or `extra.prompt_memory.<layer>.k` / `.v` per layer. Everything is checked before
// anything changes, so a bad file changes nothing; memory already set on a layer (by an earlier
// delta) is refused.
class ApplyDeltaJob : public PipelineJob {
 public:
  ApplyDeltaJob(Napi::Env env, std::shared_ptr<SdModels> m, Napi::Object o) : PipelineJob(env, "lethe.applyDelta", std::move(m), o) {
    path_ = OptionString(o, "path", "");
    scale_ = OptionNumber(o, "scale", 1.0);
    drop_memory_ = o.Get("dropMemory").ToBoolean().Value();
    if (path_.empty()) fail(codes::kBadArgument, "path is required");
  }
  void Run() override {
    auto file = SafetensorsFile::Open(path_);
    std::map<std::string, torch::OrderedDict<std::string, torch::Tensor>> params;
    auto paramsOf = [&](const std::string& component) -> torch::OrderedDict<std::string, torch::Tensor>& {
      auto it = params.find(component);
      if (it != params.end()) return it->second;
      torch::nn::Module& module = component == "unet" ? static_cast<torch::nn::Module&>(models_->denoiser()) : models_->textEncoder();
      return params.emplace(component, module.named_parameters(true)).first->second;
    };
    std::vector<std::pair<torch::Tensor, torch::Tensor>> updates;
    std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> memory;  // layer ("" = shared) -> k, v
    const std::string memPrefix = "extra.prompt_memory.";
    for (const auto& e : file->tensors()) {
      const size_t dot = e.name.find('.');
      const std::string component = e.name.substr(0, dot);
      if (component == "unet" || component == "text_encoder") {
        const std::string key = e.name.substr(dot + 1);
        torch::Tensor* p = paramsOf(component).find(key);
        if (!p) fail(codes::kBadCheckpoint, path_ + ": the model has no " + component + " parameter '" + key + "'");
        if (c10::IntArrayRef(e.shape) != p->sizes()) fail(codes::kShapeMismatch, path_ + ": '" + e.name + "' has another shape than the model's");
        updates.emplace_back(*p, file->Load(e));
      } else if (e.name.rfind(memPrefix, 0) == 0) {
        // k | v (shared) or <layer>.k | <layer>.v
        const std::string tail = e.name.substr(memPrefix.size());
        const bool shared = tail == "k" || tail == "v";
        const bool perLayer = tail.size() > 2 && tail[tail.size() - 2] == '.' && (tail.back() == 'k' || tail.back() == 'v');
        if (!shared && !perLayer) fail(codes::kBadCheckpoint, path_ + ": '" + e.name + "' is not extra.prompt_memory.{k,v} or extra.prompt_memory.<layer>.{k,v}");
        auto& kv = memory[shared ? "" : tail.substr(0, tail.size() - 2)];
        (tail.back() == 'k' ? kv.first : kv.second) = file->Load(e);
      } else if (component == "extra") {
        fail(codes::kBadCheckpoint, path_ + ": delta carries new tensors of a kind this version cannot apply (" + e.name + ")");
      } else {
        fail(codes::kBadCheckpoint, path_ + ": delta key '" + e.name + "' is not unet.<key>, text_encoder.<key> or extra.<name>");
      }
    }
    // dropMemory: the weights alone (what a plain diffusers export of the delta holds).
    if (drop_memory_) memory.clear();
    std::vector<std::pair<AttentionImpl*, std::shared_ptr<AttentionMemory>>> attach;
    if (!memory.empty()) {
      if (scale_ != 1.0) fail(codes::kBadArgument, path_ + ": a delta with prompt memory is applied whole (scale 1)");
      std::map<std::string, AttentionImpl*> layers;
      for (auto& [name, a] : models_->denoiser().crossAttentionLayers()) layers[name] = a;
      auto layer = [&](const std::string& name) {
        auto it = layers.find(name);
        if (it == layers.end()) fail(codes::kBadCheckpoint, path_ + ": prompt memory names '" + name + "', which is not a cross-attention layer of this UNet");
        if (it->second->memory()) fail(codes::kBadCheckpoint, path_ + ": the prompt memory of " + name + " is already set by another delta; two deltas cannot both set it");
        return it->second;
      };
      for (auto& [name, kv] : memory) {
        if (!kv.first.defined() || !kv.second.defined()) fail(codes::kBadCheckpoint, path_ + ": prompt memory" + (name.empty() ? "" : " of " + name) + " needs both .k and .v");
        auto mem = std::make_shared<AttentionMemory>(AttentionMemory{onDevice(kv.first), onDevice(kv.second)});
        std::vector<std::string> targets;
        if (name.empty()) {
          targets = MemoryLayers(*file);
        } else {
          targets = {name};
        }
        for (const auto& t : targets) {
          AttentionImpl* a = layer(t);
          a->checkMemory(*mem);
          attach.emplace_back(a, mem);
        }
      }
    }
    torch::NoGradGuard ng;  // validated first, then applied: a bad file changes nothing
    for (auto& [a, mem] : attach) a->setMemory(mem);
    for (auto& [p, d] : updates) p.add_(d.to(p.device(), p.scalar_type()), scale_);
    applied_ = static_cast<int64_t>(updates.size() + attach.size());
  }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(applied_)); }

 private:
  std::vector<std::string> MemoryLayers(const SafetensorsFile& file) const {
    for (const auto& [k, v] : file.metadata()) {
      if (k != "prompt_memory_layers") continue;
      json::Value list;
      try {
        list = json::parse(v.data(), v.size());
      } catch (const std::exception& e) {
        fail(codes::kBadCheckpoint, path_ + ": metadata prompt_memory_layers is not JSON (" + e.what() + ")");
      }
      std::vector<std::string> out;
      if (list.isArray())
        for (const auto& e : list.array)
          if (e.isString()) out.push_back(e.s);
      if (out.empty() || !list.isArray() || out.size() != list.array.size()) fail(codes::kBadCheckpoint, path_ + ": metadata prompt_memory_layers must be a non-empty list of layer names");
      return out;
    }
    fail(codes::kBadCheckpoint, path_ + ": shared prompt memory (extra.prompt_memory.k / .v) needs the metadata prompt_memory_layers");
  }

  std::string path_;
  double scale_;
  bool drop_memory_ = false;
  int64_t applied_ = 0;
};

// Writes one component's (possibly delta-merged) weights under diffusers/transformers names:
// `lethe export`.
class SaveComponentJob : public PipelineJob {
 public:
  SaveComponentJob(Napi::Env env, std::shared_ptr<SdModels> m, Napi::Object o) : PipelineJob(env, "lethe.saveComponent", std::move(m), o) {
    path_ = RequireString(o, "path");
    component_ = RequireString(o, "component");
    if (component_ != "unet" && component_ != "text_encoder") fail(codes::kBadArgument, "component must be unet or text_encoder");
  }
  void Run() override {
    if (component_ == "unet") {
      for (const auto& [name, a] : models_->denoiser().crossAttentionLayers())
        if (a->memory()) fail(codes::kBadArgument, "the model carries prompt memory (" + name + "), which a diffusers folder cannot represent");
      SaveWeights(models_->denoiser(), path_);
    } else {
      SaveWeights(models_->textEncoder(), path_);
    }
  }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::string path_, component_;
};

class PipelineHandle : public Napi::ObjectWrap<PipelineHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PipelineHandle",
                       {InstanceMethod<&PipelineHandle::Info>("info"),
                        InstanceMethod<&PipelineHandle::Launch<EncodeTextJob>>("encodeText"),
                        InstanceMethod<&PipelineHandle::Launch<PredictNoiseJob>>("predictNoise"),
                        InstanceMethod<&PipelineHandle::Launch<VaeEncodeJob>>("vaeEncode"),
                        InstanceMethod<&PipelineHandle::Launch<VaeDecodeJob>>("vaeDecode"),
                        InstanceMethod<&PipelineHandle::Launch<SampleJob>>("sample"),
                        InstanceMethod<&PipelineHandle::Launch<ApplyDeltaJob>>("applyDelta"),
                        InstanceMethod<&PipelineHandle::Launch<SaveComponentJob>>("saveComponent"),
                        InstanceMethod<&PipelineHandle::Erase>("erase"),
                        InstanceMethod<&PipelineHandle::TextEncoderGradients>("textEncoderGradients")});
  }
  explicit PipelineHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PipelineHandle>(info) {}

  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<SdModels> models) {
    Napi::Object obj = env.GetInstanceData<AddonData>()->pipelineClass.New({});
    Unwrap(obj)->models_ = std::move(models);
    return obj;
  }

 private:
  const std::shared_ptr<SdModels>& models(Napi::Env env) const {
    if (!models_) fail(codes::kBadArgument, "this pipeline handle holds no model (create it with loadPipeline)");
    return models_;
  }

  template <class Job>
  Napi::Value Launch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsObject()) fail(codes::kBadArgument, "expected an options object");
      return launch<Job>(env, models(env), info[0].As<Napi::Object>());
    });
  }

  Napi::Value Erase(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsObject()) fail(codes::kBadArgument, "expected an options object");
      return LaunchErasure(env, models(env), info[0].As<Napi::Object>());
    });
  }

  Napi::Value TextEncoderGradients(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsObject()) fail(codes::kBadArgument, "expected an options object");
      return LaunchTextEncoderGradients(env, models(env), info[0].As<Napi::Object>());
    });
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      const auto& m = models(env);
      Napi::Object o = Napi::Object::New(env);
      o.Set("dir", m->dir);
      o.Set("device", m->device.str());
      o.Set("dtype", dtypeName(m->dtype));
      if (m->text_encoder) {
        Napi::Object t = Napi::Object::New(env);
        t.Set("hiddenSize", Napi::Number::New(env, m->text_encoder->hiddenSize()));
        t.Set("maxPositions", Napi::Number::New(env, m->text_encoder->maxPositions()));
        t.Set("vocabSize", Napi::Number::New(env, m->text_encoder->vocabSize()));
        t.Set("numLayers", Napi::Number::New(env, m->text_encoder->numLayers()));
        o.Set("textEncoder", t);
      }
      if (m->unet) {
        Napi::Object u = Napi::Object::New(env);
        u.Set("inChannels", Napi::Number::New(env, m->unet->inChannels()));
        u.Set("crossAttentionDim", Napi::Number::New(env, m->unet->crossAttentionDim()));
        // 0: an image UNet; else the most frames a clip may have (the motion adapter's table).
        u.Set("maxFrames", Napi::Number::New(env, m->unet->maxFrames()));
        o.Set("unet", u);
      }
      if (m->vae) {
        Napi::Object v = Napi::Object::New(env);
        v.Set("scalingFactor", Napi::Number::New(env, m->vae->scalingFactor()));
        v.Set("latentChannels", Napi::Number::New(env, m->vae->latentChannels()));
        v.Set("downscale", Napi::Number::New(env, m->vae->downscale()));
        o.Set("vae", v);
      }
      return o;
    });
  }

  std::shared_ptr<SdModels> models_;
};

class LoadPipelineJob : public AsyncJob {
 public:
  LoadPipelineJob(Napi::Env env, Napi::Object o) : AsyncJob(env, "lethe.loadPipeline", o) {
    dir_ = OptionString(o, "dir", "");
    if (dir_.empty()) fail(codes::kBadArgument, "dir is required");
    device_ = ParseDevice(OptionString(o, "device", "cpu"));
    dtype_ = ParseComputeDtype(OptionString(o, "dtype", "float32"), device_);
    variant_ = OptionString(o, "variant", "");
    motion_adapter_ = OptionString(o, "motionAdapter", "");
    Napi::Value c = o.Get("components");
    if (c.IsArray()) {
      auto arr = c.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); ++i) components_.push_back(arr.Get(i).ToString().Utf8Value());
    } else {
      components_ = {"text_encoder", "unet", "vae"};
    }
  }
  void Run() override {
    models_ = SdModels::Load(
        dir_, components_, device_, dtype_, variant_, motion_adapter_,
        [&](const std::string& name, size_t done, size_t total) { Report({"load:" + name, static_cast<int64_t>(done), static_cast<int64_t>(total), {}}); },
        [&] { ThrowIfCancelled(); });
  }
  Napi::Value Result(Napi::Env env) override { return PipelineHandle::Wrap(env, models_); }

 private:
  std::string dir_, variant_, motion_adapter_;
  torch::Device device_{torch::kCPU};
  torch::ScalarType dtype_;
  std::vector<std::string> components_;
  std::shared_ptr<SdModels> models_;
};

// Standard-normal latents from torch's CPU generator: the same numbers as diffusers'
// randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(seed)).
Napi::Value Randn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(codes::kBadArgument, "expected { shape, seed }");
    auto o = info[0].As<Napi::Object>();
    std::vector<int64_t> shape = shapeFromJs(o.Get("shape"), "shape");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(OptionNumber(o, "seed", 0)));
    return tensorToJs(env, at::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat32)));
  });
}

}  // namespace

void RegisterPipeline(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = PipelineHandle::Define(env);
  env.GetInstanceData<AddonData>()->pipelineClass = Napi::Persistent(cls);
  exports.Set("PipelineHandle", cls);
  exports.Set("loadPipeline", Napi::Function::New<StartJob<LoadPipelineJob>>(env, "loadPipeline"));
  exports.Set("randn", Napi::Function::New<Randn>(env, "randn"));
  exports.Set("nativeErasureMethods", Napi::Function::New<NativeErasureMethods>(env, "nativeErasureMethods"));
}

}  // namespace lethe
