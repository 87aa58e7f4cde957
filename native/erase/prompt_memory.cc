// Learnable prompt memory (Bui et al., arXiv 2403.12326, "Removing Undesirable Concepts in
// Text-to-Image Diffusion Models with Learnable Prompts"; docs/prompt-memory.md has our reading).
// The memory P = [P_k; P_v] is the framework's cross-attention memory (erase/erasure_job.cc adds it
// to the chosen attn2 layers of the trained copy: K = W_k [c; P_k], V = W_v [c; P_v]); this method
// moves it to an optimizer of its own ("prompt", lr promptLr) and interleaves two objectives,
// `transferIterations` knowledge-transfer steps spread evenly among `erasureIterations` erasure
// steps (equal counts: they alternate, erasure first):
//   transfer (trains P only): the model with the memory keeps producing the concept,
//     L_T = MSE(eps_{theta,P}(x_t, c, t), eps*(x_t, c, t))
//   erasure (trains the selected weights theta, attn2 by default; and P with erasureTrainsPrompt):
//     ESD's negative guidance with the memory in place,
//     L_E = MSE(eps_{theta,P}(x_t, c, t), eps*(x_t, "", t) - eta (eps*(x_t, c, t) - eps*(x_t, "", t)))
//     + w MSE(eps_{theta,P}(x_t, p, t), eps*(x_t, p, t)) for one kept prompt p (when given).
// So the weights learn to erase the concept although the memory keeps pulling it back: the
// concept's knowledge is moved into P (the part the erasure works against) and the weights'
// change is what it takes to remove it even from there. Each step samples its own x_t as ESD does
// (t_enc DDIM steps with guidance `startGuidance` from the trained model, memory included);
// eps* is the frozen base model (no memory).
//
// Prompt groups: concepts, uncond (""), preserve (optional).
#include <algorithm>

#include "bridge/options.h"
#include "erase/method.h"

namespace lethe {

namespace {

constexpr const char* kMemoryK = "extra.prompt_memory.k";
constexpr const char* kMemoryV = "extra.prompt_memory.v";

class PromptMemoryMethod : public ErasureMethod {
 public:
  explicit PromptMemoryMethod(const Napi::Object& o) {
    eta_ = OptionNumber(o, "eta", 1.0);
    start_guidance_ = OptionNumber(o, "startGuidance", 3.0);
    prompt_lr_ = OptionNumber(o, "promptLr", 1e-3);
    transfer_iterations_ = static_cast<int64_t>(OptionNumber(o, "transferIterations", 0));
    erasure_iterations_ = static_cast<int64_t>(OptionNumber(o, "erasureIterations", 0));
    preserve_weight_ = OptionNumber(o, "preserveWeight", 1.0);
    erasure_trains_prompt_ = o.Get("erasureTrainsPrompt").ToBoolean().Value();
    if (!(prompt_lr_ > 0)) fail(codes::kBadArgument, "promptLr must be > 0");
    if (transfer_iterations_ < 0 || erasure_iterations_ < 1) fail(codes::kBadArgument, "erasureIterations must be >= 1 and transferIterations >= 0");
    if (!(preserve_weight_ >= 0)) fail(codes::kBadArgument, "preserveWeight must be >= 0");
  }

  void Setup(ErasureContext& ctx, OptimizerPlan& optimizers) override {
    if (!ctx.plan) fail(codes::kBadArgument, "prompt-memory samples x_t: give a sampling plan (DDIM)");
    concepts_ = ctx.prompts.count("concepts");
    if (concepts_ == 0) fail(codes::kBadArgument, "prompt-memory needs the prompt group concepts");
    if (ctx.prompts.count("uncond") != 1) fail(codes::kBadArgument, "prompt-memory needs the unconditional prompt (group uncond)");
    kept_ = preserve_weight_ > 0 ? ctx.prompts.count("preserve") : 0;
    // The memory trains on its own optimizer (its lr differs from the weights'); the weights keep
    // the job's.
    NamedParams memory, weights;
    for (auto& p : optimizers.model.params) (p.first == kMemoryK || p.first == kMemoryV ? memory : weights).push_back(p);
    if (memory.size() != 2) fail(codes::kBadArgument, "prompt-memory needs the cross-attention memory (memory tokens > 0)");
    if (weights.empty()) fail(codes::kBadArgument, "prompt-memory trains the memory and some weights: the parameter selection is empty");
    optimizers.model.params = weights;
    const double lr = prompt_lr_;
    optimizers.others.push_back({"prompt", memory, AdamWOptions{lr, 0.9, 0.999, 1e-8, 0.0}, [lr](int64_t) { return lr; }, nullptr, 0});
  }

  Objectives Step(ErasureContext& ctx) override {
    // Step s of N is a transfer step when floor((s+1) Tr / N) passes an integer: Tr of them, evenly spread.
    const int64_t N = transfer_iterations_ + erasure_iterations_, s = step_++;
    const bool transfer = (s + 1) * transfer_iterations_ / N > s * transfer_iterations_ / N;
    auto& gen = ctx.gen;
    const auto [c, t_enc, t, z] = DrawEsdStep(ctx, concepts_);
    const int64_t keep = transfer || kept_ == 0 ? -1 : torch::randint(kept_, {1}, gen, torch::kLong).item<int64_t>();

    auto t0 = StepClock::now();
    torch::Tensor x = ctx.Sample(ctx.trained.unet(), *ctx.plan, t_enc, z, ctx.prompts.frozen("uncond", 0), ctx.prompts.frozen("concepts", c), start_guidance_);
    ctx.timings["sampling"] += SecondsSince(t0);

    t0 = StepClock::now();
    torch::Tensor target, kept;
    {
      c10::InferenceMode guard;
      std::vector<torch::Tensor> xs, states;
      if (!transfer) xs.push_back(x), states.push_back(ctx.prompts.frozen("uncond", 0));
      xs.push_back(x), states.push_back(ctx.prompts.frozen("concepts", c));
      if (keep >= 0) xs.push_back(x), states.push_back(ctx.prompts.frozen("preserve", keep));
      auto e = ctx.base.denoiser().forward(torch::cat(xs), ctx.timestep(static_cast<double>(t)), torch::cat(states)).chunk(static_cast<int64_t>(xs.size()));
      target = transfer ? e[0] : e[0] - eta_ * (e[1] - e[0]);
      if (keep >= 0) kept = e[2];
    }
    target = target.clone();  // normal tensors again (inference tensors cannot be saved for backward)
    if (kept.defined()) kept = kept.clone();
    ctx.timings["frozenPredictions"] += SecondsSince(t0);

    t0 = StepClock::now();
    std::vector<torch::Tensor> xs{x}, states{ctx.prompts.frozen("concepts", c)};
    if (keep >= 0) xs.push_back(x), states.push_back(ctx.prompts.frozen("preserve", keep));
    auto out = ctx.trained.unet().forward(torch::cat(xs), ctx.timestep(static_cast<double>(t)), torch::cat(states)).to(torch::kFloat32).chunk(static_cast<int64_t>(xs.size()));
    torch::Tensor loss = torch::mse_loss(out[0], target.to(torch::kFloat32));
    if (keep >= 0) loss = loss + preserve_weight_ * torch::mse_loss(out[1], kept.to(torch::kFloat32));
    ctx.timings["trainedForward"] += SecondsSince(t0);
    if (transfer) return {{"transfer", loss, "prompt"}};
    return {{"erase", loss, erasure_trains_prompt_ ? "model,prompt" : "model"}};
  }

  // The cycle position follows from the step count, which a resumed run restores.
  void SaveState(std::vector<std::pair<std::string, torch::Tensor>>& out) const override {
    out.emplace_back("method.prompt_memory.step", torch::tensor({step_}, torch::kInt64));
  }
  void LoadState(const SafetensorsFile& checkpoint) override {
    step_ = checkpoint.Load(checkpoint.require("method.prompt_memory.step", "the prompt-memory step")).to(torch::kInt64).item<int64_t>();
  }

 private:
  double eta_, start_guidance_, prompt_lr_, preserve_weight_;
  bool erasure_trains_prompt_ = false;
  int64_t transfer_iterations_, erasure_iterations_;
  int64_t concepts_ = 0, kept_ = 0, step_ = 0;
};

}  // namespace

LETHE_ERASURE_METHOD("prompt-memory", PromptMemoryMethod);

}  // namespace lethe
