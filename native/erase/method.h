// The erasure framework's contract with a method (docs/adding-a-method.md). A method is one file
// that declares its options (read from the job's `options` object), what it adds to the model
// (extra trained tensors, auxiliary modules, more optimizers) and its per-step objective(s); the
// shared job (erase/erasure_job.cc) owns everything else: the models, the trained copy, prompts,
// the loop, NaN stop, progress, cancellation, checkpoints and resume, the delta and the result.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "erase/preservation.h"
#include "erase/trained_model.h"
#include "io/safetensors.h"
#include "models/sd_models.h"
#include "sampling/sampler.h"
#include "train/trainer.h"

namespace lethe {

// Named groups of prompts (token ids from TypeScript), encoded once by the frozen text encoder.
class PromptBank {
 public:
  void Add(const std::string& group, torch::Tensor ids);  // ids [n, tokens] int64
  void Encode(CLIPTextModelImpl& frozen, torch::Device device);
  bool has(const std::string& group) const { return ids_.count(group) > 0; }
  int64_t count(const std::string& group) const;  // 0 for a group that was not given
  // The frozen text encoder's states [1, tokens, dim] of prompt i of `group` (LETHE_BAD_ARGUMENT if absent).
  torch::Tensor frozen(const std::string& group, int64_t i) const;
  // All of a group's frozen states [n, tokens, dim].
  const torch::Tensor& frozenAll(const std::string& group) const;
  const torch::Tensor& ids(const std::string& group) const;

 private:
  std::map<std::string, torch::Tensor> ids_, states_;
};

// Seconds spent per named part of the work, for the result's breakdown:
// `auto t0 = StepClock::now(); …; ctx.timings["sampling"] += SecondsSince(t0);`
using Timings = std::map<std::string, double>;
using StepClock = std::chrono::steady_clock;
inline double SecondsSince(StepClock::time_point t) { return std::chrono::duration<double>(StepClock::now() - t).count(); }

// What a method works with at every step.
struct ErasureContext {
  SdModels& base;            // the frozen model: never trained, shared with the pipeline
  TrainedModel& trained;     // the copy being trained
  PromptBank& prompts;
  at::Generator& gen;        // the job's one random stream (checkpointed)
  std::optional<SamplingPlan> plan;  // the sampler the TypeScript side chose, when the method samples
  std::vector<int64_t> latentShape;  // [channels, height, width] of one sample
  int64_t trainTimesteps = 1000;
  Timings timings;
  std::function<void()> throwIfCancelled;

  torch::Device device() const { return base.device; }
  torch::ScalarType dtype() const { return base.dtype; }
  torch::Tensor onDevice(const torch::Tensor& t) const { return t.to(base.device, base.dtype); }
  // A timestep tensor [1] for the UNet.
  torch::Tensor timestep(double t) const;
  // The trained model's text states [1, tokens, dim] for prompt i of `group`: the frozen ones
  // when the text encoder is not trained, otherwise a forward of the trained copy (with autograd
  // unless under inference mode).
  torch::Tensor trainedStates(const std::string& group, int64_t i);
  // The same for several prompts of `group` at once: indices [n] int64 -> [n, tokens, dim].
  torch::Tensor trainedStates(const std::string& group, const torch::Tensor& indices);
  // Standard normal noise [1, C, h, w] from the job's generator (float32, then on the device).
  torch::Tensor randnLatent();
  // Runs `plan` (all or its first `steps` steps) from `z` with classifier-free guidance batched
  // (uncond; cond in one call of `unet`), under inference mode; returns a normal tensor.
  torch::Tensor Sample(UNet2DConditionModelImpl& unet, const SamplingPlan& plan, size_t steps, const torch::Tensor& z, const torch::Tensor& uncond,
                       const torch::Tensor& cond, double guidance);
};

// ESD's per-step draws (esd.cc, prompt_memory.cc: the reference's order), from ctx.gen: the
// concept c ~ U{0..concepts-1}, the DDIM step t_enc ~ U{0..S-1} the sample stops at (S = the plan's
// steps), the train timestep t ~ U{round(t_enc/S*T)..round((t_enc+1)/S*T)-1}, the initial noise z.
struct EsdDraw {
  int64_t concept, stopStep, timestep;
  torch::Tensor z;
};
EsdDraw DrawEsdStep(ErasureContext& ctx, int64_t concepts);

// Training noise as diffusers' DDPM schedule adds it, for methods that noise latents themselves
// (Concept Ablation, few-shot unlearning): the options `alphasCumprod` [T] and `vPrediction` from
// TypeScript (src/erase/training-noise.ts).
class TrainingNoise {
 public:
  explicit TrainingNoise(const Napi::Object& options);  // JS thread: reads and checks the options
  void Setup(const ErasureContext& ctx);                  // checks T against the model's, moves to the device
  struct Noised {
    torch::Tensor xt;      // sqrt(a_t) x0 + sqrt(1 - a_t) eps (diffusers' add_noise), in the model's dtype
    torch::Tensor target;  // eps, or v = sqrt(a_t) eps - sqrt(1 - a_t) x0 under v-prediction (float32)
  };
  // x0 and eps [n, C, h, w] float32 on the device, t [n] int64 on the device.
  Noised Add(const ErasureContext& ctx, const torch::Tensor& x0, const torch::Tensor& eps, const torch::Tensor& t) const;
  // The clean latent a prediction implies (DDPM's pred_original_sample): (x_t - sqrt(1 - a_t) eps) /
  // sqrt(a_t), or sqrt(a_t) x_t - sqrt(1 - a_t) v; clamped to +-clipSampleRange when the scheduler
  // config says clip_sample. Float32; differentiable in `prediction`.
  torch::Tensor PredictX0(const torch::Tensor& xt, const torch::Tensor& prediction, const torch::Tensor& t) const;

 private:
  torch::Tensor alphas_cumprod_;
  bool v_prediction_ = false;
  double clip_sample_range_ = 0;  // 0: no clipping
};

// Concept Ablation's anchor images as training samples, for the methods that train on them (CA,
// DoCo): the options `anchorLatents` [N, C, h, w] (scaled VAE latents) and `anchorPromptIndex` [N]
// (the prompt pair of each image) from src/erase/methods/ca.ts, plus TrainingNoise's.
class AnchorSamples {
 public:
  explicit AnchorSamples(const Napi::Object& options);  // JS thread: reads and checks them
  // Checks them against the prompt groups target / anchor (one pair per index) and the model's
  // latent shape; moves them to the device.
  void Setup(const ErasureContext& ctx, const std::string& method);
  struct Batch {
    torch::Tensor xt;           // noised latents [n, C, h, w], the model's dtype
    torch::Tensor noiseTarget;  // eps (or v), float32
    torch::Tensor t;            // timesteps [n] int64 on the device
    torch::Tensor ts;           // the same as float32, for the UNet
    torch::Tensor pair;         // each sample's prompt pair [n] int64 (CPU)
  };
  // n samples, drawn from ctx.gen in this order: image indices U{0..N-1}^n, eps ~ N(0, I), t ~ U{0..T-1}^n.
  Batch Draw(ErasureContext& ctx, int64_t n) const;
  const TrainingNoise& noise() const { return noise_; }

 private:
  torch::Tensor latents_, pair_of_;
  TrainingNoise noise_;
};

struct OptimizerPlan;

// What Concept Ablation and DoCo share besides their anchor samples (TypeScript: anchorTraining in
// src/erase/methods/ca.ts): the options priorWeight, batch, weightDecay (AdamW), clipGradNorm,
// detachStartToken (the reference's start-token key/value detach), preserveProjection and
// projectionWeighting (Lethe's closed-form refit, erase/preservation.h), read and checked once. Gradient clipping stays with
// each method: DoCo's surgery clips per objective, Concept Ablation the total.
class AnchorTraining {
 public:
  explicit AnchorTraining(const Napi::Object& options);  // JS thread: reads and checks them
  // AnchorSamples::Setup; the refit's preconditions; the model optimizer's weight decay; the detach.
  void Setup(ErasureContext& ctx, OptimizerPlan& optimizers, const std::string& method);
  // The refit of the key/value deltas (when preserveProjection > 0): keeps the `projection`
  // prompts' token states and what training did to the `target` prompts'.
  void Finish(ErasureContext& ctx, std::vector<std::pair<std::string, torch::Tensor>>& delta) const;

  AnchorSamples samples;
  double priorWeight = 1, clipGradNorm = 1;
  int64_t batch = 4;

 private:
  double weight_decay_ = 1e-2, preserve_projection_ = 0;
  StateWeighting projection_weighting_ = StateWeighting::kTokens;
  bool detach_start_token_ = true;
};

// One optimizer of the run: what it trains and how.
struct OptimizerSpec {
  std::string name;
  NamedParams params;
  AdamWOptions options;
  std::function<double(int64_t step)> lr;
  GradientEdit edit;        // optional: gradient surgery between this optimizer's objectives
  double clipGradNorm = 0;  // > 0: clip its gradients' total norm first
  double clipObjectiveNorm = 0;  // > 0, with an edit: clip each objective's gradients before the edit
};

struct OptimizerPlan {
  // Prefilled by the job: the selected parameters, plain Adam (0.9, 0.999, 1e-8, no decay) at the
  // job's constant lr. A method changes the options, adds its extras' tensors, sets an edit...
  OptimizerSpec model;
  // ... and adds optimizers of its own (an auxiliary module's, under names `aux.<module>.…`; they
  // are checkpointed, never written to the delta).
  std::vector<OptimizerSpec> others;
};

class ErasureMethod {
 public:
  virtual ~ErasureMethod() = default;

  // Torch thread, before the first step and before a checkpoint is restored: checks on the
  // selection, extra tensors (ctx.trained.AddExtra), optimizers.
  virtual void Setup(ErasureContext& ctx, OptimizerPlan& optimizers) {}

  // One iteration: the objectives to minimise (each names its optimizer; "" is "model").
  virtual Objectives Step(ErasureContext& ctx) = 0;

  // After the last step, before the delta is written: edit it (a closed-form refit) or add
  // metadata.
  virtual void Finish(ErasureContext& ctx, std::vector<std::pair<std::string, torch::Tensor>>& delta, Metadata& metadata) {}

  // Method state beyond parameters and optimizers that a resumed run needs (counters, pools).
  virtual void SaveState(std::vector<std::pair<std::string, torch::Tensor>>& out) const {}
  virtual void LoadState(const SafetensorsFile& checkpoint) {}
};

// Reads the method's own options on the JS thread (throw LETHE_BAD_ARGUMENT for bad ones).
using ErasureMethodFactory = std::function<std::unique_ptr<ErasureMethod>(const Napi::Object& options)>;

// The one native list of methods: each method file registers itself under its id.
bool RegisterErasureMethod(const std::string& id, ErasureMethodFactory factory);
std::unique_ptr<ErasureMethod> MakeErasureMethod(const std::string& id, const Napi::Object& options);
std::vector<std::string> ErasureMethodIds();

}  // namespace lethe

// In a method's file: LETHE_ERASURE_METHOD("esd", EsdMethod); with EsdMethod(const Napi::Object&).
#define LETHE_ERASURE_METHOD(ID, CLASS)                                                                          \
  static const bool lethe_registered_##CLASS = ::lethe::RegisterErasureMethod(ID, [](const Napi::Object& o) { \
    return std::unique_ptr<::lethe::ErasureMethod>(new CLASS(o));                                              \
  })
