// The shared training loop pieces (docs/architecture.md, "Training"), used by the bundled model's
// training and by the erasure methods: AdamW over a chosen parameter set, NaN/Inf detection,
// several objectives and optimizers per step with an optional per-tensor gradient edit (gradient
// surgery), and checkpoints (safetensors: parameters, optimizer moments, step, RNG state) for
// --resume.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"

namespace lethe {

using NamedParams = std::vector<std::pair<std::string, torch::Tensor>>;

// Parameters of `module` whose names pass `keep`, prefixed with `prefix` (e.g. "unet.").
NamedParams SelectParameters(torch::nn::Module& module, const std::string& prefix, const std::function<bool(const std::string&)>& keep);

struct AdamWOptions {
  double lr = 1e-4;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
  // true: AdamW's decoupled decay (p *= 1 - lr * wd); false: torch.optim.Adam's L2 term (g += wd * p),
  // which few-shot unlearning's reference uses.
  bool decoupled = true;
};

// AdamW written out (not torch::optim) so its state is plain named tensors we can checkpoint.
class AdamW {
 public:
  AdamW(NamedParams params, AdamWOptions options);
  void ZeroGrad();
  void Step(double lr);  // lr of this step (schedules live in the caller)
  int64_t step() const { return step_; }
  const NamedParams& params() const { return params_; }
  // param.<name>, <prefix>m.<name>, <prefix>v.<name>; the step is the caller's to record.
  void Save(std::vector<std::pair<std::string, torch::Tensor>>& out, const std::string& prefix = "adam.") const;
  // The step from the metadata's "step" (the bundled-model trainers' format) ...
  void Load(const SafetensorsFile& file);
  // ... or given (the erasure framework stores each optimizer's step as a tensor).
  void Load(const SafetensorsFile& file, const std::string& prefix, int64_t step);
  void SetLr(double lr) { o_.lr = lr; }
  const AdamWOptions& options() const { return o_; }

 private:
  NamedParams params_;
  std::vector<torch::Tensor> m_, v_;
  AdamWOptions o_;
  int64_t step_ = 0;
};

// Throws LETHE_NON_FINITE naming the step when the loss is NaN or Inf; nothing is written then.
void CheckFiniteLoss(const torch::Tensor& loss, int64_t step, const std::string& name = "");

// One loss term of a step. `optimizer` names the optimizer whose parameters it trains (the
// loop's slots; "" is the first; "a,b": both, each from the same gradient of this loss).
struct Objective {
  std::string name;
  torch::Tensor loss;
  std::string optimizer;
};
using Objectives = std::vector<Objective>;

// Gradient surgery hook: for one trained tensor of an optimizer that has several objectives in a
// step, its gradient from each of them (in the step's order; undefined where an objective does not
// reach the tensor) -> the gradient the optimizer applies. Without a hook, the sum.
using GradientEdit = std::function<torch::Tensor(const std::string& param, const std::vector<std::string>& objectives, const std::vector<torch::Tensor>& grads)>;

struct OptimizerSlot {
  std::string name;
  AdamW* opt = nullptr;
  std::function<double(int64_t step)> lr;  // lr of the step about to be taken (0-based loop step)
  GradientEdit edit;                        // optional
  double clipGradNorm = 0;                  // > 0: clip the total gradient norm first (torch's clip_grad_norm_)
  // > 0, with an edit: clip each objective's gradients to this total norm before the edit (DoCo's
  // reference clips both gradients before its surgery and not after).
  double clipObjectiveNorm = 0;
};

// Concept-preserving gradient surgery (DoCo, Wu et al. AAAI 2025, as its reference code computes
// it): with c = cos(g_u, g_p), g_u - lambda * c * g_p / |g_p| when c < 0, else g_u unchanged.
// (The step removed is the cosine times the unit vector, not g_u's projection: the reference's.)
// Either gradient undefined or zero: g_u unchanged.
torch::Tensor ConceptPreservingGradient(const torch::Tensor& gu, const torch::Tensor& gp, double lambda);

// The one optimisation loop every trainer runs (the bundled model's VAE, LDM and classifier, and
// every erasure method); each supplies only what differs: its loss(es), lr schedule and hooks.
// Per step: stop if cancelled; objectives = nextObjectives() (or nextLoss()); refuse NaN/Inf
// (nothing written); gradients of every optimizer's objectives (each optimizer only sees its own
// parameters; all gradients are taken before any optimizer steps, so one graph can feed several);
// the gradient edit; clipping; each optimizer's step; afterStep (e.g. EMA); report; checkpoint every
// checkpointEvery steps and at the last. Resuming is the caller restoring its state and `step`
// first: the loop starts at `step`.
struct TrainLoop {
  int64_t steps = 0;
  int64_t step = 0;                             // steps taken so far (set it when resuming)
  int64_t checkpointEvery = 0;                  // 0: never
  std::function<double(int64_t step)> lr;       // the one-optimizer form: lr of the step about to be taken
  std::function<void()> throwIfCancelled;
  std::function<torch::Tensor()> nextLoss;      // the one-objective form
  std::function<Objectives()> nextObjectives;   // the general form
  std::function<void()> afterStep;              // optional
  std::function<void(double loss)> report;      // optional: the sum of the step's objectives
  std::function<void(const std::vector<std::pair<std::string, double>>& terms)> reportTerms;  // optional: each objective
  std::function<void()> checkpoint;             // optional
  double backwardSeconds = 0, optimizerSeconds = 0;  // the rest of a step is in nextLoss / nextObjectives

  // One optimizer, `lr`, and nextLoss or nextObjectives; the step counter is opt.step().
  void Run(AdamW& opt);
  // Any number of optimizers.
  void Run(std::vector<OptimizerSlot>& optimizers);
};

struct Checkpoint {
  // Writes parameters (param.<name>), optimizer state, the generator state and `metadata`, atomically.
  static void Save(const std::string& path, const AdamW& opt, const at::Generator& gen, const Metadata& metadata);
  // Restores parameters, optimizer and generator; returns the checkpoint's metadata.
  static Metadata Load(const std::string& path, AdamW& opt, at::Generator& gen);
};

// Clips the gradients of `params` to a total L2 norm of `maxNorm` (torch.nn.utils.clip_grad_norm_).
void ClipGradNorm(const NamedParams& params, double maxNorm);

std::string MetadataValue(const Metadata& m, const std::string& key);
// The value as a non-negative decimal integer, or LETHE_BAD_CHECKPOINT naming the file.
int64_t MetadataInt(const Metadata& m, const std::string& key, const std::string& path);

}  // namespace lethe
