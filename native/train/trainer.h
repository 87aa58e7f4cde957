// The shared training loop pieces (DESIGN §9), used by the bundled model's training and by the
// erasure methods: AdamW over a chosen parameter set, NaN/Inf detection, a loss curve, and
// checkpoints (safetensors: parameters, optimizer moments, step, RNG state) for --resume.
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
};

// AdamW written out (not torch::optim) so its state is plain named tensors we can checkpoint.
class AdamW {
 public:
  AdamW(NamedParams params, AdamWOptions options);
  void ZeroGrad();
  void Step(double lr);  // lr of this step (schedules live in the caller)
  int64_t step() const { return step_; }
  const NamedParams& params() const { return params_; }
  void Save(std::vector<std::pair<std::string, torch::Tensor>>& out) const;  // adam.m.* / adam.v.*
  void Load(const SafetensorsFile& file);

 private:
  NamedParams params_;
  std::vector<torch::Tensor> m_, v_;
  AdamWOptions o_;
  int64_t step_ = 0;
};

// Throws LETHE_NON_FINITE naming the step when the loss is NaN or Inf; nothing is written then.
void CheckFiniteLoss(const torch::Tensor& loss, int64_t step);

// The one optimisation loop every trainer runs (the bundled model's VAE, LDM and classifier, ESD,
// and the methods after it); each supplies only what differs: its loss, lr schedule and hooks.
// Per step: stop if cancelled; loss = nextLoss(); refuse NaN/Inf (nothing written); backward;
// AdamW at lr(step); afterStep (e.g. EMA); report; checkpoint every checkpointEvery steps and at
// the last. Resuming is the caller loading a Checkpoint into `opt` first: the loop starts at opt.step().
struct TrainLoop {
  int64_t steps = 0;
  int64_t checkpointEvery = 0;                 // 0: never
  std::function<double(int64_t step)> lr;      // lr of the step about to be taken (0-based)
  std::function<void()> throwIfCancelled;
  std::function<torch::Tensor()> nextLoss;
  std::function<void()> afterStep;             // optional
  std::function<void(double loss)> report;     // optional
  std::function<void()> checkpoint;            // optional
  double backwardSeconds = 0, optimizerSeconds = 0;  // the rest of a step is in nextLoss

  void Run(AdamW& opt);
};

struct Checkpoint {
  // Writes parameters (param.<name>), optimizer state, the generator state and `metadata`, atomically.
  static void Save(const std::string& path, const AdamW& opt, const at::Generator& gen, const Metadata& metadata);
  // Restores parameters, optimizer and generator; returns the checkpoint's metadata.
  static Metadata Load(const std::string& path, AdamW& opt, at::Generator& gen);
};

std::string MetadataValue(const Metadata& m, const std::string& key);

}  // namespace lethe
