#include "sampling/sampler.h"

namespace lethe {

torch::Tensor RunPlan(const SamplingPlan& plan, const torch::Tensor& latents, const ModelFn& model,
                      const std::function<torch::Tensor(const torch::Tensor& like)>& noise, const std::function<void(size_t)>& afterStep) {
  torch::Tensor x = latents * plan.initNoiseSigma;
  torch::Tensor x0prev;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const PlanStep& s = plan.steps[i];
    torch::Tensor xin = s.cin == 1.0 ? x : x * s.cin;
    torch::Tensor out = model(xin, s.timestep);
    torch::Tensor x0, eps;
    if (plan.vPrediction) {
      x0 = s.alpha * xin - s.sigma * out;
      eps = s.sigma * xin + s.alpha * out;
    } else {
      eps = out;
      x0 = (xin - s.sigma * eps) / s.alpha;
    }
    // As diffusers' DDIM/DDPM with the pipelines' defaults: x0 is clipped, eps is left as predicted
    // (use_clipped_model_output=False).
    if (plan.clipSample) x0 = x0.clamp(-*plan.clipSample, *plan.clipSample);
    torch::Tensor next = s.cx * x;
    if (s.ceps != 0) next = next + s.ceps * eps;
    if (s.cx0 != 0) next = next + s.cx0 * x0;
    if (s.cx0prev != 0 && x0prev.defined()) next = next + s.cx0prev * x0prev;
    if (s.cnoise != 0) next = next + s.cnoise * noise(x);
    x = next;
    x0prev = x0;
    afterStep(i);
  }
  return x;
}

}  // namespace lethe
