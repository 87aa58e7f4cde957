// Training jobs for the bundled default model (scripts/train-default.js drives them):
// trainVae (AutoencoderKL), encodeLatents (dataset -> latent mean/std), trainLdm (CLIP text
// encoder + UNet jointly, epsilon objective, caption dropout for classifier-free guidance, EMA).
// Each is deterministic per seed and resumable from its checkpoint.

#include <cmath>

#include "bindings.h"
#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/unet_2d_condition.h"
#include "models/weights.h"
#include "train/trainer.h"

namespace lethe {

namespace {

torch::Tensor loadTensor(const std::string& path, const std::string& name) {
  auto f = SafetensorsFile::Open(path);
  return f->Load(f->require(name));
}

// uint8 [B, H, W, 3] -> float [B, 3, H, W] in [-1, 1]
torch::Tensor toModelImages(const torch::Tensor& u8) { return u8.permute({0, 3, 1, 2}).to(torch::kFloat32).div(127.5).sub(1.0); }

// Linear warm-up, then cosine decay to `floor` × lr.
double scheduledLr(double lr, int64_t step, int64_t total, int64_t warmup, double floor) {
  if (step < warmup) return lr * (step + 1) / warmup;
  const double progress = static_cast<double>(step - warmup) / std::max<int64_t>(1, total - warmup);
  return lr * (floor + (1 - floor) * 0.5 * (1 + std::cos(M_PI * std::min(1.0, progress))));
}

// { loss }: what a training job resolves with (the last step's loss).
Napi::Value lossResult(Napi::Env env, double loss) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", Napi::Number::New(env, loss));
  return o;
}

struct TrainSettings {
  int64_t steps, batch, warmup, checkpointEvery;
  double lr, lrFloor;
  uint64_t seed;
  std::string checkpoint;
  explicit TrainSettings(const Napi::Object& o) {
    steps = static_cast<int64_t>(OptionNumber(o, "steps", 1000));
    batch = static_cast<int64_t>(OptionNumber(o, "batch", 16));
    warmup = static_cast<int64_t>(OptionNumber(o, "warmup", 100));
    checkpointEvery = static_cast<int64_t>(OptionNumber(o, "checkpointEvery", 250));
    lr = OptionNumber(o, "lr", 1e-4);
    lrFloor = OptionNumber(o, "lrFloor", 0.1);
    seed = static_cast<uint64_t>(OptionNumber(o, "seed", 0));
    checkpoint = RequireString(o, "checkpoint");
    if (steps < 1 || batch < 1 || warmup < 1 || checkpointEvery < 1 || !(lr > 0)) fail(codes::kBadArgument, "steps, batch, warmup, checkpointEvery and lr must be positive");
  }
  // The shared loop with these settings: warm-up + cosine lr, cancellation through `job`.
  TrainLoop Loop(const AsyncJob* job) const {
    TrainLoop loop;
    loop.steps = steps;
    loop.checkpointEvery = checkpointEvery;
    loop.lr = [s = *this](int64_t step) { return scheduledLr(s.lr, step, s.steps, s.warmup, s.lrFloor); };
    loop.throwIfCancelled = [job] { job->ThrowIfCancelled(); };
    return loop;
  }
};

class TrainVaeJob : public AsyncJob {
 public:
  TrainVaeJob(Napi::Env env, Napi::Object o) : AsyncJob(env, "lethe.trainVae", o), s_(o) {
    model_dir_ = RequireString(o, "modelDir");
    data_ = RequireString(o, "data");
    kl_weight_ = OptionNumber(o, "klWeight", 1e-6);
    mse_weight_ = OptionNumber(o, "mseWeight", 0.0);
    decoder_only_ = OptionNumber(o, "decoderOnly", 0) != 0;
  }
  void Run() override {
    torch::manual_seed(s_.seed);
    AutoencoderKL vae(Config::FromFile(model_dir_ + "/vae/config.json"));
    // Decoder fine-tuning (as Stable Diffusion's ft-MSE VAE): the encoder, and so every latent the
    // UNet was trained on, stays fixed; only the decoder learns to reconstruct more faithfully.
    if (decoder_only_) LoadWeights(*vae, OpenComponentWeights(model_dir_ + "/vae"), model_dir_ + "/vae");
    torch::Tensor images = loadTensor(data_, "images");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(s_.seed + 1);
    const bool decoder_only = decoder_only_;
    auto trained = [decoder_only](const std::string& name) {
      return !decoder_only || name.rfind("decoder.", 0) == 0 || name.rfind("post_quant_conv.", 0) == 0;
    };
    for (auto& p : vae->parameters()) p.set_requires_grad(false);
    AdamW opt(SelectParameters(*vae, "vae.", trained), {s_.lr, 0.9, 0.999, 1e-8, 0.0});
    if (FileExists(s_.checkpoint)) Checkpoint::Load(s_.checkpoint, opt, gen);
    vae->train();
    const int64_t n = images.size(0);
    const char* phase = decoder_only ? "vae-decoder" : "vae";
    double last_kl = 0;
    TrainLoop loop = s_.Loop(this);
    loop.nextLoss = [&] {
      torch::Tensor idx = torch::randint(n, {s_.batch}, gen, torch::kLong);
      torch::Tensor x = toModelImages(images.index_select(0, idx));
      auto d = vae->encode(x);
      torch::Tensor z = d.mean + torch::exp(0.5 * d.logvar) * at::randn(d.mean.sizes(), gen, torch::kFloat32);
      torch::Tensor rec = vae->decode(z);
      torch::Tensor l1 = (rec - x).abs().mean();
      torch::Tensor kl = 0.5 * (d.mean.pow(2) + d.logvar.exp() - 1 - d.logvar).sum() / s_.batch;
      torch::Tensor loss = l1 + (decoder_only ? 0.0 : kl_weight_) * kl;
      if (mse_weight_ != 0) loss = loss + mse_weight_ * (rec - x).pow(2).mean();
      last_loss_ = l1.item<double>();
      last_kl = kl.item<double>();
      return loss;
    };
    loop.report = [&](double) { Report({phase, opt.step(), s_.steps, {{"loss", last_loss_}, {"kl", last_kl}}}); };
    loop.checkpoint = [&] { Checkpoint::Save(s_.checkpoint, opt, gen, {{"phase", phase}}); };
    loop.Run(opt);
    vae->eval();
    SaveWeights(*vae, model_dir_ + "/vae/diffusion_pytorch_model.safetensors");
  }
  Napi::Value Result(Napi::Env env) override { return lossResult(env, last_loss_); }

 private:
  TrainSettings s_;
  std::string model_dir_, data_;
  double kl_weight_, mse_weight_, last_loss_ = 0;
  bool decoder_only_;
};

// The dataset through the trained encoder: latent mean and std per image, for LDM training.
class EncodeLatentsJob : public AsyncJob {
 public:
  EncodeLatentsJob(Napi::Env env, Napi::Object o) : AsyncJob(env, "lethe.encodeLatents", o) {
    model_dir_ = RequireString(o, "modelDir");
    data_ = RequireString(o, "data");
    out_ = RequireString(o, "out");
  }
  void Run() override {
    c10::InferenceMode guard;
    AutoencoderKL vae(Config::FromFile(model_dir_ + "/vae/config.json"));
    LoadWeights(*vae, OpenComponentWeights(model_dir_ + "/vae"), model_dir_ + "/vae");
    vae->eval();
    torch::Tensor images = loadTensor(data_, "images");
    const int64_t n = images.size(0), chunk = 64;
    std::vector<torch::Tensor> means, stds;
    for (int64_t i = 0; i < n; i += chunk) {
      ThrowIfCancelled();
      auto d = vae->encode(toModelImages(images.slice(0, i, std::min(n, i + chunk))));
      means.push_back(d.mean);
      stds.push_back(torch::exp(0.5 * d.logvar));
      Report({"encode", std::min(n, i + chunk), n, {}});
    }
    torch::Tensor mean = torch::cat(means), std = torch::cat(stds);
    latent_std_ = mean.std().item<double>();
    WriteSafetensors(out_, {{"mean", mean}, {"std", std}}, {});
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("latentStd", Napi::Number::New(env, latent_std_));
    return o;
  }

 private:
  std::string model_dir_, data_, out_;
  double latent_std_ = 0;
};

class TrainLdmJob : public AsyncJob {
 public:
  TrainLdmJob(Napi::Env env, Napi::Object o) : AsyncJob(env, "lethe.trainLdm", o), s_(o) {
    model_dir_ = RequireString(o, "modelDir");
    data_ = RequireString(o, "data");
    latents_ = RequireString(o, "latents");
    scaling_ = OptionNumber(o, "scalingFactor", 1.0);
    dropout_ = OptionNumber(o, "captionDropout", 0.1);
    ema_decay_ = OptionNumber(o, "emaDecay", 0.999);
    alphas_cumprod_ = tensorFromJs(o.Get("alphasCumprod"), "alphasCumprod").to(torch::kFloat32);
    empty_ids_ = tensorFromJs(o.Get("emptyIds"), "emptyIds").to(torch::kLong);
  }
  void Run() override {
    torch::manual_seed(s_.seed);
    CLIPTextModel te(Config::FromFile(model_dir_ + "/text_encoder/config.json"));
    UNet2DConditionModel unet(Config::FromFile(model_dir_ + "/unet/config.json"));
    torch::Tensor ids = loadTensor(data_, "ids");
    auto lf = SafetensorsFile::Open(latents_);
    torch::Tensor zmean = lf->Load(lf->require("mean", "latent statistics")), zstd = lf->Load(lf->require("std", "latent statistics"));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(s_.seed + 2);
    NamedParams params = SelectParameters(*te, "text_encoder.", [](const std::string&) { return true; });
    NamedParams up = SelectParameters(*unet, "unet.", [](const std::string&) { return true; });
    params.insert(params.end(), up.begin(), up.end());
    // EMA weights are what gets saved: they sample better than the raw weights.
    std::vector<torch::Tensor> ema;
    for (auto& [_, p] : params) ema.push_back(p.detach().clone());
    AdamW opt(params, {s_.lr, 0.9, 0.999, 1e-8, 0.01});
    if (FileExists(s_.checkpoint)) {
      Checkpoint::Load(s_.checkpoint, opt, gen);
      auto f = SafetensorsFile::Open(s_.checkpoint);
      for (size_t i = 0; i < params.size(); ++i) {
        torch::Tensor t = f->Load(f->require("ema." + params[i].first, "EMA weights"));
        if (t.sizes() != ema[i].sizes()) fail(codes::kBadCheckpoint, s_.checkpoint + ": ema." + params[i].first + " has another shape than the model's");
        ema[i].copy_(t);
      }
    }
    te->train();
    unet->train();
    const int64_t n = ids.size(0), T = alphas_cumprod_.size(0);
    TrainLoop loop = s_.Loop(this);
    loop.nextLoss = [&] {
      torch::Tensor idx = torch::randint(n, {s_.batch}, gen, torch::kLong);
      torch::Tensor z0 = (zmean.index_select(0, idx) + zstd.index_select(0, idx) * at::randn({s_.batch, zmean.size(1), zmean.size(2), zmean.size(3)}, gen, torch::kFloat32)) * scaling_;
      torch::Tensor tokens = ids.index_select(0, idx);
      torch::Tensor drop = torch::rand({s_.batch}, gen, torch::kFloat32) < dropout_;
      tokens = torch::where(drop.unsqueeze(1), empty_ids_.unsqueeze(0).expand_as(tokens), tokens);
      torch::Tensor t = torch::randint(T, {s_.batch}, gen, torch::kLong);
      torch::Tensor noise = at::randn(z0.sizes(), gen, torch::kFloat32);
      torch::Tensor ab = alphas_cumprod_.index_select(0, t).view({-1, 1, 1, 1});
      torch::Tensor xt = ab.sqrt() * z0 + (1 - ab).sqrt() * noise;
      torch::Tensor pred = unet->forward(xt, t.to(torch::kFloat32), te->forward(tokens));
      return torch::mse_loss(pred, noise);
    };
    loop.afterStep = [&] {
      torch::NoGradGuard ng;
      // Warm-up of the EMA decay so early weights do not dominate.
      const double d = std::min(ema_decay_, (1.0 + opt.step()) / (10.0 + opt.step()));
      for (size_t i = 0; i < params.size(); ++i) ema[i].mul_(d).add_(params[i].second.detach(), 1 - d);
    };
    loop.report = [&](double loss) {
      last_loss_ = loss;
      Report({"ldm", opt.step(), s_.steps, {{"loss", last_loss_}}});
    };
    loop.checkpoint = [&] { saveCheckpoint(opt, gen, params, ema); };
    loop.Run(opt);
    // Install the EMA weights and write the two components.
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) params[i].second.copy_(ema[i]);
    te->eval();
    unet->eval();
    SaveWeights(*te, model_dir_ + "/text_encoder/model.safetensors");
    SaveWeights(*unet, model_dir_ + "/unet/diffusion_pytorch_model.safetensors");
  }
  Napi::Value Result(Napi::Env env) override { return lossResult(env, last_loss_); }

 private:
  void saveCheckpoint(const AdamW& opt, const at::Generator& gen, const NamedParams& params, const std::vector<torch::Tensor>& ema) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    opt.Save(tensors);
    for (size_t i = 0; i < params.size(); ++i) tensors.emplace_back("ema." + params[i].first, ema[i]);
    tensors.emplace_back("rng", gen.get_state());
    WriteSafetensors(s_.checkpoint, tensors, {{"phase", "ldm"}, {"step", std::to_string(opt.step())}});
  }

  TrainSettings s_;
  std::string model_dir_, data_, latents_;
  double scaling_, dropout_, ema_decay_, last_loss_ = 0;
  torch::Tensor alphas_cumprod_, empty_ids_;
};

}  // namespace

void RegisterTrainDefault(Napi::Env env, Napi::Object exports) {
  exports.Set("trainVae", Napi::Function::New<StartJob<TrainVaeJob>>(env, "trainVae"));
  exports.Set("encodeLatents", Napi::Function::New<StartJob<EncodeLatentsJob>>(env, "encodeLatents"));
  exports.Set("trainLdm", Napi::Function::New<StartJob<TrainLdmJob>>(env, "trainLdm"));
}

}  // namespace lethe
