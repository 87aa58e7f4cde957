// Concept Ablation (Kumari et al., ICCV 2023), following the reference implementation's training
// step (diffusers version, train.py of nupurkmr9/concept-ablation) on anchor images the TypeScript
// side generated with the base model and encoded once (src/erase/methods/ca.ts, docs/ca.md):
//   per iteration, from the job's generator in this order:
//     idx ~ U{0..N-1}^n (n = batch, doubled with prior preservation: the second half are the
//     prior samples), eps ~ N(0, I) [n, C, h, w], t ~ U{0..T-1}^n;
//   x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps  (diffusers' add_noise, float32);
//   first half: the anchor image's target prompt c*; second half: its anchor prompt c;
//   model-based: target = sg[eps_theta(x_t, c, t)] of the network being trained, under no-grad;
//   noise-based: target = eps (v = sqrt(a) eps - sqrt(1-a) x0 under v-prediction);
//   loss = MSE(eps_theta(x_t, c*, t), target) + w * MSE(eps_theta(x_t', c, t'), eps' or v')
//   with one batched forward for both halves; AdamW (weight decay), gradient clipping.
// The start token's key and value in every cross-attention layer carry no gradient (the
// reference's detach). Deviation: the reference's random-resize augmentation is not applied, so its
// valid-region mask is all ones and the masked mean is the plain mean.
//
// Lethe's addition (off unless preserveProjection > 0): the closed-form refit of the key/value
// deltas that keeps the `projection` prompts' token states (erase/preservation.h), as for ESD.
//
// Prompt groups: target and anchor (pairs, same count); anchor image i belongs to pair
// anchorPromptIndex[i]; projection (what the refit keeps).
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "erase/method.h"

namespace lethe {

namespace {

class ConceptAblationMethod : public ErasureMethod {
 public:
  explicit ConceptAblationMethod(const Napi::Object& o) : training_(o) {
    const std::string loss = OptionString(o, "loss", "model");
    if (loss != "model" && loss != "noise") fail(codes::kBadArgument, "loss must be 'model' or 'noise'");
    model_based_ = loss == "model";
  }

  void Setup(ErasureContext& ctx, OptimizerPlan& optimizers) override {
    training_.Setup(ctx, optimizers, "Concept Ablation");
    optimizers.model.clipGradNorm = training_.clipGradNorm;
  }

  Objectives Step(ErasureContext& ctx) override {
    const int64_t b = training_.batch, n = training_.priorWeight > 0 ? 2 * b : b;
    auto t0 = StepClock::now();
    const auto [xt, noiseTarget, t, ts, pair] = training_.samples.Draw(ctx, n);

    torch::Tensor target;
    const torch::Tensor first = pair.slice(0, 0, b);
    if (model_based_) {
      c10::InferenceMode guard;
      target = ctx.trained.unet().forward(xt.slice(0, 0, b), ts.slice(0, 0, b), ctx.trainedStates("anchor", first)).to(torch::kFloat32);
    }
    target = model_based_ ? target.clone() : noiseTarget.slice(0, 0, b);
    ctx.timings["anchorPredictions"] += SecondsSince(t0);

    t0 = StepClock::now();
    torch::Tensor states = ctx.trainedStates("target", first);
    if (n > b) states = torch::cat({states, ctx.trainedStates("anchor", pair.slice(0, b))});
    const torch::Tensor out = ctx.trained.unet().forward(xt, ts, states).to(torch::kFloat32);
    torch::Tensor loss = torch::mse_loss(out.slice(0, 0, b), target);
    if (n > b) loss = loss + training_.priorWeight * torch::mse_loss(out.slice(0, b), noiseTarget.slice(0, b));
    ctx.timings["trainedForward"] += SecondsSince(t0);
    return {{"loss", loss, ""}};
  }

  void Finish(ErasureContext& ctx, std::vector<std::pair<std::string, torch::Tensor>>& delta, Metadata&) override {
    training_.Finish(ctx, delta);
  }

 private:
  bool model_based_ = true;
  AnchorTraining training_;
};

}  // namespace

LETHE_ERASURE_METHOD("ca", ConceptAblationMethod);

}  // namespace lethe
