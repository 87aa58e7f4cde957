#include "erase/method.h"

#include <algorithm>
#include <cmath>

#include "bridge/errors.h"
#include "bridge/options.h"
#include "erase/preservation.h"

namespace lethe {

namespace {

std::map<std::string, ErasureMethodFactory>& Registry() {
  static std::map<std::string, ErasureMethodFactory> registry;  // filled by static initialisers, before any call
  return registry;
}

}  // namespace

bool RegisterErasureMethod(const std::string& id, ErasureMethodFactory factory) {
  if (!Registry().emplace(id, std::move(factory)).second) throw std::logic_error("erasure method '" + id + "' registered twice");
  return true;
}

std::unique_ptr<ErasureMethod> MakeErasureMethod(const std::string& id, const Napi::Object& options) {
  auto it = Registry().find(id);
  if (it == Registry().end()) {
    std::string known;
    for (const auto& k : ErasureMethodIds()) known += (known.empty() ? "" : ", ") + k;
    fail(codes::kBadArgument, "no native erasure method '" + id + "' (this build has " + known + ")");
  }
  return it->second(options);
}

std::vector<std::string> ErasureMethodIds() {
  std::vector<std::string> ids;
  for (const auto& [k, _] : Registry()) ids.push_back(k);
  return ids;
}

void PromptBank::Add(const std::string& group, torch::Tensor ids) {
  if (ids.dim() != 2 || ids.size(0) < 1) fail(codes::kShapeMismatch, "prompts." + group + " must be token ids [prompts, tokens]");
  if (ids.scalar_type() != torch::kInt64 && ids.scalar_type() != torch::kInt32) fail(codes::kBadArgument, "prompts." + group + " must be int64 token ids");
  ids_[group] = ids.to(torch::kInt64);
}

void PromptBank::Encode(CLIPTextModelImpl& frozen, torch::Device device) {
  // No-grad rather than inference mode: these states enter the trained model's graph as inputs.
  torch::NoGradGuard ng;
  for (const auto& [group, ids] : ids_) states_[group] = frozen.forward(ids.to(device));
}

int64_t PromptBank::count(const std::string& group) const {
  auto it = ids_.find(group);
  return it == ids_.end() ? 0 : it->second.size(0);
}

const torch::Tensor& PromptBank::ids(const std::string& group) const {
  auto it = ids_.find(group);
  if (it == ids_.end()) fail(codes::kBadArgument, "this method needs the prompt group '" + group + "'");
  return it->second;
}

const torch::Tensor& PromptBank::frozenAll(const std::string& group) const {
  ids(group);  // the message for a missing group
  auto it = states_.find(group);
  if (it == states_.end()) fail(codes::kInternal, "prompts were not encoded");
  return it->second;
}

torch::Tensor PromptBank::frozen(const std::string& group, int64_t i) const { return frozenAll(group).slice(0, i, i + 1); }

torch::Tensor ErasureContext::timestep(double t) const {
  return torch::full({1}, t, torch::TensorOptions().dtype(torch::kFloat32).device(base.device));
}

torch::Tensor ErasureContext::trainedStates(const std::string& group, int64_t i) {
  if (!trained.trainsTextEncoder()) return prompts.frozen(group, i);
  return trained.textEncoder().forward(prompts.ids(group).slice(0, i, i + 1).to(base.device));
}

torch::Tensor ErasureContext::trainedStates(const std::string& group, const torch::Tensor& indices) {
  if (!trained.trainsTextEncoder()) return prompts.frozenAll(group).index_select(0, indices.to(prompts.frozenAll(group).device()));
  return trained.textEncoder().forward(prompts.ids(group).index_select(0, indices.cpu()).to(base.device));
}

torch::Tensor ErasureContext::randnLatent() {
  std::vector<int64_t> shape{1};
  shape.insert(shape.end(), latentShape.begin(), latentShape.end());
  return at::randn(shape, gen, torch::kFloat32);
}

torch::Tensor ErasureContext::Sample(UNet2DConditionModelImpl& unet, const SamplingPlan& full, size_t steps, const torch::Tensor& z, const torch::Tensor& uncond,
                                     const torch::Tensor& cond, double guidance) {
  torch::Tensor x;
  {
    c10::InferenceMode guard;
    const torch::Tensor context = torch::cat({uncond, cond});
    SamplingPlan prefix = full;
    prefix.steps.resize(std::min(steps, full.steps.size()));
    auto guided = [&](const torch::Tensor& xin, double ts) {
      auto out = unet.forward(torch::cat({xin, xin}), timestep(ts), context).chunk(2);
      return out[0] + guidance * (out[1] - out[0]);
    };
    x = RunPlan(prefix, onDevice(z), guided, [](const torch::Tensor& like) { return torch::zeros_like(like); }, [](size_t) {});
  }
  return x.clone();  // a normal tensor again: it may enter a graph
}

TrainingNoise::TrainingNoise(const Napi::Object& o) {
  v_prediction_ = o.Get("vPrediction").ToBoolean().Value();
  alphas_cumprod_ = RequireTensor(o, "alphasCumprod").to(torch::kFloat32);
  if (alphas_cumprod_.dim() != 1 || alphas_cumprod_.size(0) < 2) fail(codes::kShapeMismatch, "alphasCumprod must be [num_train_timesteps]");
  clip_sample_range_ = OptionNumber(o, "clipSampleRange", 0.0);
  if (!(clip_sample_range_ >= 0)) fail(codes::kBadArgument, "clipSampleRange must be >= 0");
}

void TrainingNoise::Setup(const ErasureContext& ctx) {
  if (alphas_cumprod_.size(0) != ctx.trainTimesteps)
    fail(codes::kShapeMismatch, "alphasCumprod has " + std::to_string(alphas_cumprod_.size(0)) + " entries for " + std::to_string(ctx.trainTimesteps) + " train timesteps");
  alphas_cumprod_ = alphas_cumprod_.to(ctx.device());
}

TrainingNoise::Noised TrainingNoise::Add(const ErasureContext& ctx, const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& t) const {
  const torch::Tensor a = alphas_cumprod_.index_select(0, t).view({t.size(0), 1, 1, 1});
  const torch::Tensor signal = a.sqrt(), noise = (1 - a).sqrt();
  return {ctx.onDevice(signal * x0 + noise * eps), v_prediction_ ? signal * eps - noise * x0 : eps};
}

torch::Tensor TrainingNoise::PredictX0(const torch::Tensor& xt, const torch::Tensor& prediction, const torch::Tensor& t) const {
  const torch::Tensor a = alphas_cumprod_.index_select(0, t).view({t.size(0), 1, 1, 1});
  const torch::Tensor x = xt.to(torch::kFloat32), p = prediction.to(torch::kFloat32);
  torch::Tensor x0 = v_prediction_ ? a.sqrt() * x - (1 - a).sqrt() * p : (x - (1 - a).sqrt() * p) / a.sqrt();
  return clip_sample_range_ > 0 ? x0.clamp(-clip_sample_range_, clip_sample_range_) : x0;
}

AnchorSamples::AnchorSamples(const Napi::Object& o) : noise_(o) {
  latents_ = RequireTensor(o, "anchorLatents").to(torch::kFloat32);
  pair_of_ = RequireTensor(o, "anchorPromptIndex").to(torch::kInt64);
  if (latents_.dim() != 4 || latents_.size(0) < 1) fail(codes::kShapeMismatch, "anchorLatents must be [images, channels, height, width]");
  if (pair_of_.dim() != 1 || pair_of_.size(0) != latents_.size(0)) fail(codes::kShapeMismatch, "anchorPromptIndex must give one prompt pair per anchor image");
  if (!torch::isfinite(latents_).all().item<bool>()) fail(codes::kNonFinite, "the anchor latents hold NaN or infinity: the base model cannot generate the anchor images");
}

void AnchorSamples::Setup(const ErasureContext& ctx, const std::string& method) {
  const int64_t pairs = ctx.prompts.count("target");
  if (pairs == 0 || ctx.prompts.count("anchor") != pairs) fail(codes::kBadArgument, method + " needs the prompt groups target and anchor, one anchor prompt per target prompt");
  if (pair_of_.min().item<int64_t>() < 0 || pair_of_.max().item<int64_t>() >= pairs) fail(codes::kBadArgument, "anchorPromptIndex names a prompt pair that was not given");
  noise_.Setup(ctx);
  std::vector<int64_t> want{latents_.size(0)};
  want.insert(want.end(), ctx.latentShape.begin(), ctx.latentShape.end());
  if (latents_.sizes().vec() != want) fail(codes::kShapeMismatch, "anchorLatents do not have this model's latent shape");
  latents_ = latents_.to(ctx.device());
}

AnchorSamples::Batch AnchorSamples::Draw(ErasureContext& ctx, int64_t n) const {
  const torch::Tensor idx = torch::randint(latents_.size(0), {n}, ctx.gen, torch::kLong);
  std::vector<int64_t> shape{n};
  shape.insert(shape.end(), ctx.latentShape.begin(), ctx.latentShape.end());
  const torch::Tensor eps = at::randn(shape, ctx.gen, torch::kFloat32).to(ctx.device());
  const torch::Tensor t = torch::randint(ctx.trainTimesteps, {n}, ctx.gen, torch::kLong).to(ctx.device());
  const torch::Tensor x0 = latents_.index_select(0, idx.to(ctx.device()));
  auto noised = noise_.Add(ctx, x0, eps, t);
  return {noised.xt, noised.target, t, t.to(torch::kFloat32), pair_of_.index_select(0, idx)};
}

AnchorTraining::AnchorTraining(const Napi::Object& o) : samples(o) {
  priorWeight = OptionNumber(o, "priorWeight", 1.0);
  batch = static_cast<int64_t>(OptionNumber(o, "batch", 4));
  weight_decay_ = OptionNumber(o, "weightDecay", 1e-2);
  clipGradNorm = OptionNumber(o, "clipGradNorm", 1.0);
  detach_start_token_ = !o.Has("detachStartToken") || o.Get("detachStartToken").ToBoolean().Value();
  preserve_projection_ = OptionNumber(o, "preserveProjection", 0.0);
  if (!(preserve_projection_ >= 0)) fail(codes::kBadArgument, "preserveProjection must be >= 0");
  projection_weighting_ = ParseStateWeighting(OptionString(o, "projectionWeighting", "tokens"));
  if (!(priorWeight >= 0) || !(weight_decay_ >= 0) || !(clipGradNorm >= 0)) fail(codes::kBadArgument, "priorWeight, weightDecay and clipGradNorm must be >= 0");
  if (batch < 1 || batch > 256) fail(codes::kBadArgument, "batch must be in 1..256");
}

void AnchorTraining::Setup(ErasureContext& ctx, OptimizerPlan& optimizers, const std::string& method) {
  samples.Setup(ctx, method);
  if (preserve_projection_ > 0) CheckPreservationApplies(ctx.prompts.count("projection"), ctx.trained.parameters(), " (use xattn or attn)");
  optimizers.model.options.weight_decay = weight_decay_;
  if (detach_start_token_)
    for (auto& [_, layer] : ctx.trained.unet().crossAttentionLayers()) layer->setDetachStartToken(true);
}

void AnchorTraining::Finish(ErasureContext& ctx, std::vector<std::pair<std::string, torch::Tensor>>& delta) const {
  if (preserve_projection_ > 0)
    ApplyPreservation(delta, {ctx.prompts.frozenAll("target"), ctx.prompts.ids("target")}, {ctx.prompts.frozenAll("projection"), ctx.prompts.ids("projection")},
                      preserve_projection_, projection_weighting_);
}

EsdDraw DrawEsdStep(ErasureContext& ctx, int64_t concepts) {
  const int64_t S = static_cast<int64_t>(ctx.plan->steps.size());
  const int64_t T = ctx.trainTimesteps;
  const int64_t c = torch::randint(concepts, {1}, ctx.gen, torch::kLong).item<int64_t>();
  const int64_t t_enc = torch::randint(S, {1}, ctx.gen, torch::kLong).item<int64_t>();
  const int64_t lo = std::llround(static_cast<double>(t_enc) / S * T), hi = std::llround(static_cast<double>(t_enc + 1) / S * T);
  const int64_t t = torch::randint(lo, std::max(lo + 1, hi), {1}, ctx.gen, torch::kLong).item<int64_t>();
  return {c, t_enc, t, ctx.randnLatent()};
}

}  // namespace lethe
