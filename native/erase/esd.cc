// ESD (Gandikota et al., ICCV 2023), following the reference implementation's loop
// (train-scripts/train-esd.py):
//   pick a concept c; t_enc ~ U{0..S-1}; from z ~ N(0, I) sample t_enc DDIM steps (eta 0) with
//   guidance `startGuidance` (uncond "") using the model being trained (or the frozen one);
//   t ~ U[round(t_enc/S*T), round((t_enc+1)/S*T)); frozen: e0 = eps*(x,t,""), ep = eps*(x,t,c)
//   in one batched call; trained: en = eps_theta(x,t,c'); loss = MSE(en, e0 - eta*(ep - e0)); Adam.
// c' is c, or the --erase-from prompt (sampled and trained on, target still built from c).
// Lethe's addition, only with kept prompts: for one kept prompt p per iteration,
// loss += w * MSE(eps_theta(x,t,p), eps*(x,t,p)) on the same x and t; and, with a projection
// weight a > 0, every cross-attention key/value delta D becomes D*Ae*(Ae + a*Ap + r*I)^-1
// (erase/preservation.h) before it is written.
//
// Prompt groups: concepts (the targets), train (what is sampled and trained on, one per concept),
// uncond (""), preserve (kept by the term), projection (kept by the refit).
#include <algorithm>
#include "bridge/options.h"
#include "erase/method.h"
#include "erase/preservation.h"

namespace lethe {

namespace {

class EsdMethod : public ErasureMethod {
 public:
  explicit EsdMethod(const Napi::Object& o) {
    eta_ = OptionNumber(o, "eta", 1.0);
    start_guidance_ = OptionNumber(o, "startGuidance", 3.0);
    const std::string with = OptionString(o, "sampleWith", "trained");
    if (with != "trained" && with != "frozen") fail(codes::kBadArgument, "sampleWith must be 'trained' or 'frozen'");
    sample_with_frozen_ = with == "frozen";
    preserve_weight_ = OptionNumber(o, "preserveWeight", 1.0);
    preserve_projection_ = OptionNumber(o, "preserveProjection", 0.0);
    if (!(preserve_weight_ >= 0) || !(preserve_projection_ >= 0)) fail(codes::kBadArgument, "preserveWeight and preserveProjection must be >= 0");
    projection_weighting_ = ParseStateWeighting(OptionString(o, "projectionWeighting", "tokens"));
  }

  void Setup(ErasureContext& ctx, OptimizerPlan&) override {
    if (!ctx.plan) fail(codes::kBadArgument, "ESD samples x_t: give a sampling plan (DDIM)");
    concepts_ = ctx.prompts.count("concepts");
    if (concepts_ == 0 || ctx.prompts.count("train") != concepts_) fail(codes::kBadArgument, "ESD needs the prompt groups concepts and train, one train prompt per concept");
    if (ctx.prompts.count("uncond") != 1) fail(codes::kBadArgument, "ESD needs the unconditional prompt (group uncond)");
    kept_ = preserve_weight_ > 0 ? ctx.prompts.count("preserve") : 0;
    if (preserve_projection_ > 0)
      CheckPreservationApplies(ctx.prompts.count("projection"), ctx.trained.parameters(), "; use a method that trains them (esd-x, esd-x-strict, esd-all)");
  }

  Objectives Step(ErasureContext& ctx) override {
    auto& gen = ctx.gen;
    const auto [c, t_enc, t, z] = DrawEsdStep(ctx, concepts_);
    // A preserved prompt (drawn only when the term is on, so plain ESD keeps the reference's
    // random stream).
    const int64_t keep = kept_ == 0 ? -1 : torch::randint(kept_, {1}, gen, torch::kLong).item<int64_t>();

    auto t0 = StepClock::now();
    torch::Tensor x;
    if (sample_with_frozen_) {
      x = ctx.Sample(ctx.base.denoiser(), *ctx.plan, t_enc, z, ctx.prompts.frozen("uncond", 0), ctx.prompts.frozen("train", c), start_guidance_);
    } else {
      torch::Tensor u, k;
      {
        c10::InferenceMode guard;
        u = ctx.trainedStates("uncond", 0);
        k = ctx.trainedStates("train", c);
      }
      x = ctx.Sample(ctx.trained.unet(), *ctx.plan, t_enc, z, u, k, start_guidance_);
    }
    ctx.timings["sampling"] += SecondsSince(t0);

    t0 = StepClock::now();
    torch::Tensor target, kept;
    {
      c10::InferenceMode guard;
      std::vector<torch::Tensor> xs{x, x}, states{ctx.prompts.frozen("uncond", 0), ctx.prompts.frozen("concepts", c)};
      if (keep >= 0) xs.push_back(x), states.push_back(ctx.prompts.frozen("preserve", keep));
      auto e = ctx.base.denoiser().forward(torch::cat(xs), ctx.timestep(static_cast<double>(t)), torch::cat(states)).chunk(static_cast<int64_t>(xs.size()));
      target = e[0] - eta_ * (e[1] - e[0]);
      if (keep >= 0) kept = e[2];
    }
    target = target.clone();  // normal tensors again (inference tensors cannot be saved for backward)
    if (kept.defined()) kept = kept.clone();
    ctx.timings["frozenPredictions"] += SecondsSince(t0);

    t0 = StepClock::now();
    // Preservation (not in the reference): on the same x, the trained model's prediction for the
    // kept prompt is pulled to the frozen one's, batched with the erasure term.
    std::vector<torch::Tensor> xs{x}, states{ctx.trainedStates("train", c)};
    if (keep >= 0) xs.push_back(x), states.push_back(ctx.trainedStates("preserve", keep));
    auto out = ctx.trained.unet().forward(torch::cat(xs), ctx.timestep(static_cast<double>(t)), torch::cat(states)).to(torch::kFloat32).chunk(static_cast<int64_t>(xs.size()));
    torch::Tensor loss = torch::mse_loss(out[0], target.to(torch::kFloat32));
    if (keep >= 0) loss = loss + preserve_weight_ * torch::mse_loss(out[1], kept.to(torch::kFloat32));
    ctx.timings["trainedForward"] += SecondsSince(t0);
    return {{"loss", loss, ""}};
  }

  void Finish(ErasureContext& ctx, std::vector<std::pair<std::string, torch::Tensor>>& delta, Metadata&) override {
    if (!(preserve_projection_ > 0)) return;
    ApplyPreservation(delta, {ctx.prompts.frozenAll("train"), ctx.prompts.ids("train")}, {ctx.prompts.frozenAll("projection"), ctx.prompts.ids("projection")},
                      preserve_projection_, projection_weighting_);
  }

 private:
  double eta_, start_guidance_, preserve_weight_, preserve_projection_;
  StateWeighting projection_weighting_ = StateWeighting::kTokens;
  bool sample_with_frozen_;
  int64_t concepts_ = 0, kept_ = 0;
};

}  // namespace

LETHE_ERASURE_METHOD("esd", EsdMethod);

}  // namespace lethe
