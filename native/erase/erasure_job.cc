// The shared erasure job: everything a method does not (docs/adding-a-method.md).
//   options: { method, options (the method's own), params (patterns), prompts { group: ids },
//              iterations, lr, seed, plan?, latentShape, trainTimesteps,
//              memory? { tokens, layers (globs on attn2 layer names), initScale },
//              start? { name: tensor } (an earlier delta of this selection to continue from),
//              out, checkpoint, checkpointEvery, resume, metadata { k: v }, identity { k: v } }
// The run: encode the prompts with the frozen text encoder; select the trained tensors; build the
// trained copy; the method's Setup; restore a checkpoint after checking it belongs to this run;
// the training loop (NaN stop, progress, cancellation, checkpoints); the method's Finish; the
// delta written atomically; the checkpoint removed.
#include "erase/erasure_job.h"

#include <unistd.h>

#include <chrono>
#include <set>

#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "erase/method.h"
#include "erase/selection.h"
#include "io/json.h"
#include "sampling/plan_js.h"

namespace lethe {

namespace {

std::vector<std::string> StringList(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) fail(codes::kBadArgument, std::string(what) + " must be an array of strings");
  auto arr = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsString()) fail(codes::kBadArgument, std::string(what) + " must be an array of strings");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

Metadata StringMap(const Napi::Value& v) {
  Metadata out;
  if (!v.IsObject()) return out;
  auto o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string k = keys.Get(i).ToString().Utf8Value();
    out.emplace_back(k, o.Get(k).ToString().Utf8Value());
  }
  return out;
}

torch::Tensor DoubleTensor(const std::vector<double>& v) { return torch::tensor(v, torch::TensorOptions().dtype(torch::kFloat64)); }

std::vector<double> DoubleVector(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

int64_t ScalarInt(const SafetensorsFile& f, const std::string& key) {
  const TensorEntry* e = f.find(key);
  if (!e || e->shape != std::vector<int64_t>{1}) fail(codes::kBadCheckpoint, f.path() + ": checkpoint lacks " + key);
  return f.Load(*e).to(torch::kInt64).item<int64_t>();
}

class ErasureJob : public AsyncJob {
 public:
  ErasureJob(Napi::Env env, std::shared_ptr<SdModels> models, Napi::Object o) : AsyncJob(env, "lethe.erase", o), m_(std::move(models)) {
    id_ = RequireString(o, "method");
    Napi::Value mo = o.Get("options");
    method_ = MakeErasureMethod(id_, mo.IsObject() ? mo.As<Napi::Object>() : Napi::Object::New(env));
    patterns_ = ParsePatterns(StringList(o.Get("params"), "params"));
    Napi::Value pv = o.Get("prompts");
    if (!pv.IsObject()) fail(codes::kBadArgument, "prompts must be an object of token-id tensors");
    auto po = pv.As<Napi::Object>();
    Napi::Array groups = po.GetPropertyNames();
    for (uint32_t i = 0; i < groups.Length(); ++i) {
      std::string g = groups.Get(i).ToString().Utf8Value();
      Napi::Value t = po.Get(g);
      if (!t.IsUndefined()) prompts_.Add(g, tensorFromJs(t, "prompts." + g));
    }
    iterations_ = static_cast<int64_t>(OptionNumber(o, "iterations", 1000));
    lr_ = OptionNumber(o, "lr", 1e-5);
    seed_ = static_cast<uint64_t>(OptionNumber(o, "seed", 0));
    if (o.Has("plan") && !o.Get("plan").IsUndefined()) plan_ = PlanFromJs(o.Get("plan"));
    latent_shape_ = shapeFromJs(o.Get("latentShape"), "latentShape");
    train_timesteps_ = static_cast<int64_t>(OptionNumber(o, "trainTimesteps", 1000));
    out_ = RequireString(o, "out");
    checkpoint_ = OptionString(o, "checkpoint", "");
    checkpoint_every_ = static_cast<int64_t>(OptionNumber(o, "checkpointEvery", 0));
    resume_ = o.Get("resume").ToBoolean().Value();
    metadata_ = StringMap(o.Get("metadata"));
    Napi::Value mem = o.Get("memory");
    if (mem.IsObject()) {
      auto mo = mem.As<Napi::Object>();
      memory_tokens_ = static_cast<int64_t>(OptionNumber(mo, "tokens", 0));
      memory_layers_ = StringList(mo.Get("layers"), "memory.layers");
      memory_init_scale_ = OptionNumber(mo, "initScale", 0.02);
      if (memory_tokens_ < 0 || memory_tokens_ > 1024) fail(codes::kBadArgument, "memory.tokens must be in 0..1024");
      if (memory_tokens_ > 0 && memory_layers_.empty()) fail(codes::kBadArgument, "memory.layers: name the cross-attention layers that get memory tokens");
    }
    Napi::Value start = o.Get("start");
    if (start.IsObject()) {
      auto so = start.As<Napi::Object>();
      Napi::Array names = so.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); ++i) {
        std::string k = names.Get(i).ToString().Utf8Value();
        start_.emplace_back(k, tensorFromJs(so.Get(k), "start." + k));
      }
    }
    identity_ = StringMap(o.Get("identity"));
    if (iterations_ < 1) fail(codes::kBadArgument, "iterations must be >= 1");
    if (!(lr_ > 0)) fail(codes::kBadArgument, "lr must be > 0");
    if (latent_shape_.size() != 3) fail(codes::kBadArgument, "latentShape must be [channels, height, width]");
    if (checkpoint_every_ < 0) fail(codes::kBadArgument, "checkpointEvery must be >= 0");
    if (resume_ && (checkpoint_.empty() || !FileExists(checkpoint_))) fail(codes::kBadArgument, "--resume: no checkpoint at '" + checkpoint_ + "'");
  }

 protected:
  void Run() override {
    using Clock = std::chrono::steady_clock;
    prompts_.Encode(m_->textEncoder(), m_->device);
    std::map<std::string, std::vector<std::string>> available;
    for (const auto& p : m_->denoiser().named_parameters(true)) available["unet"].push_back(p.key());
    if (m_->text_encoder)
      for (const auto& p : m_->text_encoder->named_parameters(true)) available["text_encoder"].push_back(p.key());
    TrainedModel trained(*m_, SelectParameters(patterns_, available));
    for (const auto& [name, _] : trained.parameters()) trained_names_.push_back(name);

    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_);
    ErasureContext ctx{*m_, trained, prompts_, gen, plan_, latent_shape_, train_timesteps_, {}, [this] { ThrowIfCancelled(); }};

    OptimizerPlan plan;
    const double lr = lr_;
    plan.model = {"model", trained.parameters(), AdamWOptions{lr, 0.9, 0.999, 1e-8, 0.0}, [lr](int64_t) { return lr; }, nullptr, 0, 0};
    if (memory_tokens_ > 0) AddMemory(trained, gen, plan);
    if (!start_.empty()) ApplyStart(trained);
    method_->Setup(ctx, plan);
    std::vector<OptimizerSpec> specs{plan.model};
    specs.insert(specs.end(), plan.others.begin(), plan.others.end());
    std::vector<std::unique_ptr<AdamW>> opts;
    std::vector<OptimizerSlot> slots;
    std::set<std::string> names;
    for (auto& s : specs) {
      if (!names.insert(s.name).second || s.params.empty()) fail(codes::kInternal, "optimizer '" + s.name + "' is declared twice or trains nothing");
      opts.push_back(std::make_unique<AdamW>(s.params, s.options));
      slots.push_back({s.name, opts.back().get(), s.lr, s.edit, s.clipGradNorm, s.clipObjectiveNorm});
    }
    for (const auto& [name, _] : trained.extras()) trained_names_.push_back(name);
    trained_elements_ = trained.trainedElements();

    TrainLoop loop;
    if (resume_) loop.step = Restore(slots, gen);
    loop.steps = iterations_;
    loop.checkpointEvery = checkpoint_.empty() ? 0 : checkpoint_every_;
    loop.throwIfCancelled = [this] { ThrowIfCancelled(); };
    loop.nextObjectives = [&] { return method_->Step(ctx); };
    loop.reportTerms = [&](const std::vector<std::pair<std::string, double>>& terms) {
      double total = 0;
      Progress p{id_, loop.step, iterations_, {}};
      for (const auto& [name, v] : terms) {
        total += v;
        if (terms.size() > 1) p.values[name] = v;
        auto& curve = terms_[name];
        curve.resize(loop.step - 1, std::nan(""));  // a term absent from earlier steps
        curve.push_back(v);
      }
      losses_.push_back(total);
      p.values["loss"] = total;
      Report(std::move(p));
    };
    // No checkpoint after the last step: the delta is written next and the checkpoint removed.
    loop.checkpoint = [&] {
      if (loop.step < iterations_) Save(slots, gen, loop.step);
    };
    auto t0 = Clock::now();
    loop.Run(slots);
    for (auto& [_, curve] : terms_) curve.resize(losses_.size(), std::nan(""));  // a term absent from the last steps
    loop_seconds_ = std::chrono::duration<double>(Clock::now() - t0).count();
    timings_ = ctx.timings;
    timings_["backward"] += loop.backwardSeconds;
    timings_["optimizer"] += loop.optimizerSeconds;

    auto delta = trained.Delta();
    Metadata meta = metadata_;
    method_->Finish(ctx, delta, meta);
    WriteSafetensors(out_, delta, meta);
    if (!checkpoint_.empty()) ::unlink(checkpoint_.c_str());  // finished: the checkpoint has served
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("losses", numbersToJs(env, losses_));
    Napi::Object terms = Napi::Object::New(env);
    for (const auto& [name, curve] : terms_) terms.Set(name, numbersToJs(env, curve));
    o.Set("terms", terms);
    o.Set("trainedParameters", Napi::Number::New(env, static_cast<double>(trained_elements_)));
    Napi::Array names = Napi::Array::New(env, trained_names_.size());
    for (uint32_t i = 0; i < trained_names_.size(); ++i) names.Set(i, trained_names_[i]);
    o.Set("trainedTensors", names);
    Napi::Object s = Napi::Object::New(env);
    for (const auto& [k, v] : timings_) s.Set(k, Napi::Number::New(env, v));
    s.Set("loop", Napi::Number::New(env, loop_seconds_));
    o.Set("seconds", s);
    return o;
  }

 private:
  // Memory tokens (docs/architecture.md, "Cross-attention memory"): one learnable key/value
  // memory of `tokens` tokens shared by the chosen attn2 layers of the trained copy, drawn from the
  // job's generator (N(0, initScale^2)) before the first step and trained with the selected
  // parameters; written to the delta as extra.prompt_memory.k / .v with the layers in the metadata.
  void AddMemory(TrainedModel& trained, at::Generator& gen, OptimizerPlan& plan) {
    std::vector<std::pair<std::string, AttentionImpl*>> chosen, all = trained.unet().crossAttentionLayers();
    for (const auto& l : all)
      for (const auto& g : memory_layers_)
        if (GlobMatch(g, l.first)) {
          chosen.push_back(l);
          break;
        }
    if (chosen.empty()) {
      std::string names;
      for (const auto& l : all) names += (names.empty() ? "" : ", ") + l.first;
      fail(codes::kBadArgument, "memory layers match no cross-attention layer; this UNet has " + names);
    }
    const int64_t dim = trained.unet().crossAttentionDim();
    torch::Tensor k0 = at::randn({memory_tokens_, dim}, gen, torch::kFloat32) * memory_init_scale_;
    torch::Tensor v0 = at::randn({memory_tokens_, dim}, gen, torch::kFloat32) * memory_init_scale_;
    auto mem = std::make_shared<AttentionMemory>(AttentionMemory{trained.AddExtra("prompt_memory.k", k0), trained.AddExtra("prompt_memory.v", v0)});
    std::string list = "[";
    for (size_t i = 0; i < chosen.size(); ++i) {
      chosen[i].second->setMemory(mem);
      list += (i ? "," : "") + json::quote(chosen[i].first);
    }
    metadata_.emplace_back("prompt_memory_layers", list + "]");
    plan.model.params.emplace_back("extra.prompt_memory.k", mem->k);
    plan.model.params.emplace_back("extra.prompt_memory.v", mem->v);
  }

  // Continuing an earlier delta (continual erasure): its weight deltas are added to the trained
  // copy's clones and its extras replace theirs, so training goes on from where that run ended and
  // the delta written is again the whole change from the base. Every tensor must be one this run
  // trains, with the same shape.
  void ApplyStart(TrainedModel& trained) {
    torch::NoGradGuard ng;
    std::map<std::string, torch::Tensor> ours;
    for (const auto& [k, t] : trained.parameters()) ours[k] = t;
    std::set<std::string> extras;
    for (const auto& [k, t] : trained.extras()) ours[k] = t, extras.insert(k);
    for (const auto& [k, v] : start_) {
      auto it = ours.find(k);
      if (it == ours.end()) fail(codes::kBadArgument, "the delta to continue has " + k + ", which this run does not train; continue it with the same parameter selection and memory");
      if (it->second.sizes() != v.sizes())
        fail(codes::kShapeMismatch, "the delta to continue has " + k + " of shape " + c10::str(v.sizes()) + ", this run's is " + c10::str(it->second.sizes()));
      torch::Tensor value = v.to(it->second.device(), it->second.scalar_type());
      if (extras.count(k)) it->second.copy_(value);
      else it->second.add_(value);
    }
  }

  // Checkpoint: every optimizer (parameters, moments, step), the generator, the loop's step, the
  // loss curves in float64 (exact), the method's own state, and this run's identity.
  void Save(const std::vector<OptimizerSlot>& slots, const at::Generator& gen, int64_t step) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& s : slots) {
      s.opt->Save(tensors, "adam." + s.name + ".");
      tensors.emplace_back("adam." + s.name + ".step", torch::tensor({s.opt->step()}, torch::kInt64));
    }
    tensors.emplace_back("rng", gen.get_state());
    tensors.emplace_back("trainer.step", torch::tensor({step}, torch::kInt64));
    tensors.emplace_back("trainer.losses", DoubleTensor(losses_));
    for (const auto& [name, curve] : terms_) tensors.emplace_back("trainer.term." + name, DoubleTensor(curve));
    method_->SaveState(tensors);
    Metadata meta{{"format", "lethe-checkpoint"}, {"format_version", "2"}};
    for (const auto& [k, v] : identity_) meta.emplace_back("identity." + k, v);
    WriteSafetensors(checkpoint_, tensors, meta);
  }

  int64_t Restore(std::vector<OptimizerSlot>& slots, at::Generator& gen) {
    auto file = SafetensorsFile::Open(checkpoint_);
    CheckIdentity(file->metadata());
    for (auto& s : slots) s.opt->Load(*file, "adam." + s.name + ".", ScalarInt(*file, "adam." + s.name + ".step"));
    gen.set_state(file->Load(file->require("rng", "the generator state")));
    const int64_t step = ScalarInt(*file, "trainer.step");
    losses_ = DoubleVector(file->Load(file->require("trainer.losses", "the loss curve")));
    const std::string prefix = "trainer.term.";
    for (const auto& e : file->tensors())
      if (e.name.rfind(prefix, 0) == 0) terms_[e.name.substr(prefix.size())] = DoubleVector(file->Load(e));
    if (static_cast<int64_t>(losses_.size()) != step) fail(codes::kBadCheckpoint, checkpoint_ + ": its loss curve does not match its step count");
    method_->LoadState(*file);
    return step;
  }

  // A checkpoint resumes only the run that wrote it: same method, options, concepts, base model
  // and Lethe version. Every differing field is named.
  void CheckIdentity(const Metadata& meta) const {
    std::map<std::string, std::string> theirs, ours;
    const std::string prefix = "identity.";
    for (const auto& [k, v] : meta)
      if (k.rfind(prefix, 0) == 0) theirs[k.substr(prefix.size())] = v;
    for (const auto& [k, v] : identity_) ours[k] = v;
    if (theirs.empty()) fail(codes::kBadCheckpoint, checkpoint_ + ": not a checkpoint of this Lethe version's erasures; delete it or run without --resume");
    std::set<std::string> keys;
    for (const auto& [k, _] : theirs) keys.insert(k);
    for (const auto& [k, _] : ours) keys.insert(k);
    std::string diff;
    for (const auto& k : keys) {
      auto a = theirs.find(k), b = ours.find(k);
      const std::string was = a == theirs.end() ? "(none)" : a->second, now = b == ours.end() ? "(none)" : b->second;
      if (was != now) diff += (diff.empty() ? "" : "; ") + k + ": checkpoint " + was + ", this run " + now;
    }
    if (!diff.empty())
      fail(codes::kBadCheckpoint, checkpoint_ + " was written by another run (" + diff + "). Resume with the same settings, or delete the checkpoint to start over");
  }

  std::shared_ptr<SdModels> m_;
  std::string id_, out_, checkpoint_;
  std::unique_ptr<ErasureMethod> method_;
  std::vector<ParamPattern> patterns_;
  PromptBank prompts_;
  int64_t iterations_, train_timesteps_, checkpoint_every_, trained_elements_ = 0;
  double lr_, loop_seconds_ = 0;
  uint64_t seed_;
  std::optional<SamplingPlan> plan_;
  std::vector<int64_t> latent_shape_;
  bool resume_;
  int64_t memory_tokens_ = 0;
  std::vector<std::string> memory_layers_;
  double memory_init_scale_ = 0.02;
  Metadata metadata_, identity_;
  std::vector<std::pair<std::string, torch::Tensor>> start_;
  std::vector<double> losses_;
  std::map<std::string, std::vector<double>> terms_;
  std::vector<std::string> trained_names_;
  Timings timings_;
};

}  // namespace

Napi::Promise LaunchErasure(Napi::Env env, std::shared_ptr<SdModels> models, Napi::Object options) {
  return launch<ErasureJob>(env, std::move(models), options);
}

Napi::Value NativeErasureMethods(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto ids = ErasureMethodIds();
  Napi::Array out = Napi::Array::New(env, ids.size());
  for (uint32_t i = 0; i < ids.size(); ++i) out.Set(i, ids[i]);
  return out;
}

}  // namespace lethe
