// ESD, following the reference implementation's loop (train-scripts/train-esd.py):
//   pick a concept c; t_enc ~ U{0..S-1}; from z ~ N(0, I) sample t_enc DDIM steps (eta 0) with
//   guidance `start_guidance` (uncond "") using the model being trained (or the frozen one);
//   t ~ U[round(t_enc/S*T), round((t_enc+1)/S*T)); frozen: e0 = eps*(x,t,""), ep = eps*(x,t,c)
//   in one batched call; trained: en = eps_theta(x,t,c'); loss = MSE(en, e0 - eta*(ep - e0)); Adam.
// c' is c, or the --erase-from prompt (sampled and trained on, target still built from c).
// Lethe's addition, only with kept prompts: for one kept prompt p per iteration,
// loss += w * MSE(eps_theta(x,t,p), eps*(x,t,p)) on the same x and t; and, with a projection
// weight a > 0, every cross-attention key/value delta D becomes D*Ae*(Ae + a*Ap + r*I)^-1
// (PreservationMap below) before it is written.
#include "erase/esd.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "bridge/async_job.h"
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "erase/param_sets.h"
#include "sampling/plan_js.h"
#include "train/trainer.h"

namespace lethe {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<torch::Tensor> tensorList(Napi::Value v, const char* what) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() == 0) fail(codes::kBadArgument, std::string(what) + " must be a non-empty array of tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<torch::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(tensorFromJs(arr.Get(i), what));
  return out;
}

// Lethe's closed-form preservation (not in the reference). attn2.to_k / to_v read the text
// encoder's token states directly, so for a delta D of such a weight the least-squares choice
//   argmin_D'  mean_e |D' s_e - D s_e|^2 + a * mean_p |D' s_p|^2 + r |D'|^2
// over the erased prompts' token states s_e and the kept prompts' s_p keeps what training did to
// the erased text and undoes it, in proportion to a, for the kept prompts:
//   D' = D * Ae * (Ae + a*Ap + r*I)^-1,  Ae = mean s_e s_e^T, Ap = mean s_p s_p^T.
// r = 1e-3 * trace(Ae) / dim only keeps the system well conditioned (directions neither set uses
// lose the edit). Returns the right factor [dim, dim] in float64 on the CPU.
torch::Tensor PreservationMap(const std::vector<torch::Tensor>& erased, const std::vector<torch::Tensor>& kept, double weight) {
  auto secondMoment = [](const std::vector<torch::Tensor>& states) {
    torch::Tensor s = torch::cat(states).to(torch::kCPU, torch::kFloat64);
    s = s.reshape({-1, s.size(-1)});
    return s.t().mm(s) / static_cast<double>(s.size(0));
  };
  torch::Tensor ae = secondMoment(erased), ap = secondMoment(kept);
  const int64_t dim = ae.size(0);
  torch::Tensor m = ae + weight * ap + (1e-3 * ae.trace().item<double>() / dim) * torch::eye(dim, torch::kFloat64);
  return torch::linalg_solve(m, ae).t();  // (M^-1 Ae)^T = Ae M^-1: both are symmetric
}

bool ReadsTextStates(const std::string& name) {
  auto endsWith = [&](const std::string& tail) { return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0; };
  return endsWith(".attn2.to_k.weight") || endsWith(".attn2.to_v.weight");
}

class EsdJob : public AsyncJob {
 public:
  EsdJob(Napi::Env env, std::shared_ptr<SdModels> models, Napi::Object o) : AsyncJob(env, "lethe.esd", o), m_(std::move(models)) {
    param_set_ = OptionString(o, "paramSet", "esd-x");
    InParamSet(param_set_, "");  // validates the name
    concepts_ = tensorList(o.Get("concepts"), "concepts");
    train_prompts_ = tensorList(o.Get("trainPrompts"), "trainPrompts");
    if (train_prompts_.size() != concepts_.size()) fail(codes::kBadArgument, "trainPrompts must have one entry per concept");
    if (o.Has("preserve") && !o.Get("preserve").IsUndefined()) preserve_ = tensorList(o.Get("preserve"), "preserve");
    // Every prompt the projection keeps (the term's kept prompts included).
    if (o.Has("projectionKeep") && !o.Get("projectionKeep").IsUndefined()) projection_keep_ = tensorList(o.Get("projectionKeep"), "projectionKeep");
    preserve_weight_ = OptionNumber(o, "preserveWeight", 1.0);
    preserve_projection_ = OptionNumber(o, "preserveProjection", 0.0);
    if (!(preserve_weight_ >= 0) || !(preserve_projection_ >= 0)) fail(codes::kBadArgument, "preserveWeight and preserveProjection must be >= 0");
    if (preserve_projection_ > 0 && projection_keep_.empty()) fail(codes::kBadArgument, "preserveProjection needs the prompts it keeps (projectionKeep)");
    uncond_ = tensorFromJs(o.Get("uncond"), "uncond");
    plan_ = PlanFromJs(o.Get("plan"));
    eta_ = OptionNumber(o, "eta", 1.0);
    iterations_ = static_cast<int64_t>(OptionNumber(o, "iterations", 1000));
    lr_ = OptionNumber(o, "lr", 1e-5);
    start_guidance_ = OptionNumber(o, "startGuidance", 3.0);
    train_timesteps_ = static_cast<int64_t>(OptionNumber(o, "trainTimesteps", 1000));
    seed_ = static_cast<uint64_t>(OptionNumber(o, "seed", 0));
    sample_with_frozen_ = OptionString(o, "sampleWith", "trained") == "frozen";
    out_ = OptionString(o, "out", "");
    checkpoint_ = OptionString(o, "checkpoint", "");
    checkpoint_every_ = static_cast<int64_t>(OptionNumber(o, "checkpointEvery", 0));
    resume_ = o.Get("resume").ToBoolean().Value();
    latent_shape_ = shapeFromJs(o.Get("latentShape"), "latentShape");
    Napi::Value meta = o.Get("metadata");
    if (meta.IsObject()) {
      auto mo = meta.As<Napi::Object>();
      Napi::Array keys = mo.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        std::string k = keys.Get(i).ToString().Utf8Value();
        metadata_.emplace_back(k, mo.Get(k).ToString().Utf8Value());
      }
    }
    if (out_.empty()) fail(codes::kBadArgument, "out (the delta file) is required");
    if (iterations_ < 1) fail(codes::kBadArgument, "iterations must be >= 1");
    if (!(lr_ > 0)) fail(codes::kBadArgument, "lr must be > 0");
    if (latent_shape_.size() != 3) fail(codes::kBadArgument, "latentShape must be [channels, height, width]");
    if (resume_ && (checkpoint_.empty() || !FileExists(checkpoint_))) fail(codes::kBadArgument, "--resume: no checkpoint at '" + checkpoint_ + "'");
  }

 protected:
  void Run() override {
    UNet2DConditionModelImpl& frozen = m_->denoiser();
    if (!m_->unet_config) fail(codes::kInternal, "the UNet config was not kept");
    const auto dev = m_->device;
    const auto dtype = m_->dtype;
    auto onDevice = [&](const torch::Tensor& t) { return t.to(dev, dtype); };
    for (auto& t : concepts_) t = onDevice(t);
    for (auto& t : train_prompts_) t = onDevice(t);
    for (auto& t : preserve_) t = onDevice(t);
    uncond_ = onDevice(uncond_);
    for (const auto* list : {&concepts_, &train_prompts_, &preserve_, &projection_keep_})
      for (const auto& t : *list)
        if (t.dim() != 3 || t.size(0) != 1 || t.size(2) != frozen.crossAttentionDim())
          fail(codes::kShapeMismatch, "prompt embeddings must be [1, tokens, " + std::to_string(frozen.crossAttentionDim()) + "]");

    // The trained copy: selected parameters cloned, every other tensor shared with the frozen UNet.
    UNet2DConditionModel trained(*m_->unet_config);
    auto frozenParams = frozen.named_parameters(true);
    NamedParams selected;
    {
      torch::NoGradGuard ng;
      for (auto& p : trained->named_parameters(true)) {
        const torch::Tensor& base = frozenParams[p.key()];
        if (InParamSet(param_set_, p.key())) {
          p.value().set_data(base.detach().clone());
          p.value().set_requires_grad(true);
          selected.emplace_back("unet." + p.key(), p.value());
          base_.push_back(base);
        } else {
          p.value().set_data(base);
          p.value().set_requires_grad(false);
        }
      }
      for (auto& p : frozen.parameters()) p.set_requires_grad(false);
    }
    if (selected.empty()) fail(codes::kBadArgument, "parameter set '" + param_set_ + "' selects no parameter of this UNet");
    for (const auto& [_, p] : selected) trained_parameters_ += p.numel();
    if (preserve_projection_ > 0 && std::none_of(selected.begin(), selected.end(), [](const auto& p) { return ReadsTextStates(p.first); }))
      fail(codes::kBadArgument, "preserveProjection acts on attn2.to_k / to_v, which parameter set '" + param_set_ + "' does not train; use a method that trains them (esd-x, esd-x-strict, esd-all)");

    AdamW opt(selected, {lr_, 0.9, 0.999, 1e-8, 0.0});
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed_);
    if (resume_) {
      Metadata meta = Checkpoint::Load(checkpoint_, opt, gen);
      for (const auto& [k, v] : meta)
        if (k == "losses" && v.size() > 2) {
          std::string body = v.substr(1, v.size() - 2);
          size_t pos = 0;
          while (pos < body.size()) {
            size_t next = body.find(',', pos);
            losses_.push_back(std::stod(body.substr(pos, next - pos)));
            pos = next == std::string::npos ? body.size() : next + 1;
          }
        }
    }

    const int64_t S = static_cast<int64_t>(plan_.steps.size());
    const int64_t T = train_timesteps_;
    auto tsTensor = [&](double t) { return torch::full({1}, t, torch::TensorOptions().dtype(torch::kFloat32).device(dev)); };
    TrainLoop loop;
    loop.steps = iterations_;
    loop.checkpointEvery = checkpoint_.empty() ? 0 : checkpoint_every_;
    loop.lr = [this](int64_t) { return lr_; };
    loop.throwIfCancelled = [this] { ThrowIfCancelled(); };
    loop.nextLoss = [&] {
      const int64_t c = torch::randint(static_cast<int64_t>(concepts_.size()), {1}, gen, torch::kLong).item<int64_t>();
      const int64_t t_enc = torch::randint(S, {1}, gen, torch::kLong).item<int64_t>();
      const int64_t lo = std::llround(static_cast<double>(t_enc) / S * T), hi = std::llround(static_cast<double>(t_enc + 1) / S * T);
      const int64_t t = torch::randint(lo, std::max(lo + 1, hi), {1}, gen, torch::kLong).item<int64_t>();
      std::vector<int64_t> shape{1};
      shape.insert(shape.end(), latent_shape_.begin(), latent_shape_.end());
      torch::Tensor z = at::randn(shape, gen, torch::kFloat32);
      // A preserved prompt (drawn only when the term is on, so plain ESD keeps the reference's
      // random stream).
      const int64_t keep = preserve_.empty() || preserve_weight_ == 0 ? -1 : torch::randint(static_cast<int64_t>(preserve_.size()), {1}, gen, torch::kLong).item<int64_t>();

      auto t0 = Clock::now();
      torch::Tensor x;
      {
        c10::InferenceMode guard;
        UNet2DConditionModelImpl& sampler = sample_with_frozen_ ? frozen : *trained;
        torch::Tensor ctx = torch::cat({uncond_, train_prompts_[c]});
        SamplingPlan prefix = plan_;
        prefix.steps.resize(t_enc);  // sample until step t_enc
        auto guided = [&](const torch::Tensor& xin, double ts) {
          auto out = sampler.forward(torch::cat({xin, xin}), tsTensor(ts), ctx).chunk(2);
          return out[0] + start_guidance_ * (out[1] - out[0]);
        };
        x = RunPlan(prefix, onDevice(z), guided, [](const torch::Tensor& like) { return torch::zeros_like(like); }, [](size_t) {});
      }
      x = x.clone();  // a normal tensor again: it enters the graph below
      time_sampling_ += since(t0);

      t0 = Clock::now();
      torch::Tensor target, kept;
      {
        c10::InferenceMode guard;
        std::vector<torch::Tensor> xs{x, x}, ctx{uncond_, concepts_[c]};
        if (keep >= 0) xs.push_back(x), ctx.push_back(preserve_[keep]);
        auto e = frozen.forward(torch::cat(xs), tsTensor(static_cast<double>(t)), torch::cat(ctx)).chunk(static_cast<int64_t>(xs.size()));
        target = e[0] - eta_ * (e[1] - e[0]);
        if (keep >= 0) kept = e[2];
      }
      target = target.clone();  // normal tensors again (inference tensors cannot be saved for backward)
      if (kept.defined()) kept = kept.clone();
      time_frozen_ += since(t0);

      t0 = Clock::now();
      // Preservation (not in the reference): on the same x, the trained model's prediction for the
      // kept prompt is pulled to the frozen one's, batched with the erasure term.
      std::vector<torch::Tensor> xs{x}, ctx{train_prompts_[c]};
      if (keep >= 0) xs.push_back(x), ctx.push_back(preserve_[keep]);
      auto out = trained->forward(torch::cat(xs), tsTensor(static_cast<double>(t)), torch::cat(ctx)).to(torch::kFloat32).chunk(static_cast<int64_t>(xs.size()));
      torch::Tensor loss = torch::mse_loss(out[0], target.to(torch::kFloat32));
      if (keep >= 0) loss = loss + preserve_weight_ * torch::mse_loss(out[1], kept.to(torch::kFloat32));
      time_trained_ += since(t0);
      return loss;
    };
    loop.report = [&](double loss) {
      losses_.push_back(loss);
      Report({"esd", opt.step(), iterations_, {{"loss", loss}}});
    };
    // No checkpoint after the last step: the delta is written next and the checkpoint removed.
    loop.checkpoint = [&] {
      if (opt.step() < iterations_) Checkpoint::Save(checkpoint_, opt, gen, {{"method", "esd"}, {"paramSet", param_set_}, {"losses", lossesJson()}});
    };
    loop.Run(opt);
    time_trained_ += loop.backwardSeconds;
    time_optimizer_ += loop.optimizerSeconds;

    // The delta: new - base for the trained parameters only, written atomically.
    std::vector<std::pair<std::string, torch::Tensor>> delta;
    {
      torch::NoGradGuard ng;
      for (size_t i = 0; i < selected.size(); ++i) delta.emplace_back(selected[i].first, (selected[i].second - base_[i]).to(torch::kFloat32).cpu());
      if (preserve_projection_ > 0) {
        const torch::Tensor map = PreservationMap(train_prompts_, projection_keep_, preserve_projection_);
        for (auto& [name, d] : delta)
          if (ReadsTextStates(name)) d = d.to(torch::kFloat64).mm(map).to(torch::kFloat32);
      }
    }
    Metadata meta = metadata_;
    meta.emplace_back("parameter_set", param_set_);
    WriteSafetensors(out_, delta, meta);
    if (!checkpoint_.empty()) ::unlink(checkpoint_.c_str());  // finished: the checkpoint has served
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("losses", numbersToJs(env, losses_));
    o.Set("trainedParameters", Napi::Number::New(env, static_cast<double>(trained_parameters_)));
    Napi::Object b = Napi::Object::New(env);
    b.Set("sampling", Napi::Number::New(env, time_sampling_));
    b.Set("frozenPredictions", Napi::Number::New(env, time_frozen_));
    b.Set("trainedForwardBackward", Napi::Number::New(env, time_trained_));
    b.Set("optimizer", Napi::Number::New(env, time_optimizer_));
    o.Set("seconds", b);
    return o;
  }

 private:
  std::string lossesJson() const {
    std::string s = "[";
    for (size_t i = 0; i < losses_.size(); ++i) s += (i ? "," : "") + std::to_string(losses_[i]);
    return s + "]";
  }

  std::shared_ptr<SdModels> m_;
  std::string param_set_, out_, checkpoint_;
  std::vector<torch::Tensor> concepts_, train_prompts_, preserve_, projection_keep_, base_;
  torch::Tensor uncond_;
  SamplingPlan plan_;
  double eta_, lr_, start_guidance_, preserve_weight_, preserve_projection_;
  int64_t iterations_, train_timesteps_, checkpoint_every_, trained_parameters_ = 0;
  uint64_t seed_;
  bool sample_with_frozen_, resume_;
  std::vector<int64_t> latent_shape_;
  Metadata metadata_;
  std::vector<double> losses_;
  double time_sampling_ = 0, time_frozen_ = 0, time_trained_ = 0, time_optimizer_ = 0;
};

}  // namespace

Napi::Promise LaunchEsd(Napi::Env env, std::shared_ptr<SdModels> models, Napi::Object options) {
  return launch<EsdJob>(env, std::move(models), options);
}

}  // namespace lethe
