// The one sampling loop (docs/architecture.md, "Sampling"). A sampler is a plan computed in TypeScript from the
// scheduler config: per step a timestep and coefficients that make the update linear in the
// current sample, the model's noise and x0 predictions, the previous x0 and fresh noise.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lethe {

struct PlanStep {
  double timestep = 0;  // fed to the UNet
  double cin = 1;       // model input = cin * x
  double alpha = 1;     // model input = alpha * x0 + sigma * eps
  double sigma = 0;
  double cx = 0, ceps = 0, cx0 = 0, cx0prev = 0, cnoise = 0;
};

struct SamplingPlan {
  bool vPrediction = false;
  double initNoiseSigma = 1;
  std::optional<double> clipSample;
  std::vector<PlanStep> steps;
};

// The guided model output (eps or v) for model input `xin` at timestep `t`.
using ModelFn = std::function<torch::Tensor(const torch::Tensor& xin, double t)>;

// Runs the plan from `latents` (unscaled standard-normal noise). `noise` draws fresh noise for
// stochastic samplers from the caller's generator; `afterStep(i)` reports and checks cancellation.
torch::Tensor RunPlan(const SamplingPlan& plan, const torch::Tensor& latents, const ModelFn& model,
                      const std::function<torch::Tensor(const torch::Tensor& like)>& noise, const std::function<void(size_t)>& afterStep);

}  // namespace lethe
