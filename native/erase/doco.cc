// DoCo (Wu et al., AAAI 2025, "Unlearning Concepts in Diffusion Model via Concept Domain Correction
// and Concept Preserving Gradient"), following the training step of the authors' train.py
// (yongliang-wu/DoCo, built on Concept Ablation's) on Concept Ablation's anchor images
// (src/erase/methods/doco.ts, docs/doco.md):
//   per step s, from the job's generator in this order (as Concept Ablation):
//     idx ~ U{0..N-1}^2B (the second half are the prior samples), eps ~ N(0, I), t ~ U{0..T-1}^2B;
//   x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps;
//   real = x0-hat of the FROZEN model's prediction on the first half with its anchor prompts;
//   fake = x0-hat of the trained model's prediction on the first half with the target prompts;
//   after the warm-up (s > warmup, 0-based, as the reference's `global_step > warm_up`):
//     adversarial  = BCE(D(fake), 0)                       trains the model (and, as in the
//                    reference, whose discriminator keeps this gradient, the discriminator);
//     preservation = MSE(eps_theta(x_t', anchor prompt), eps') on the prior half;
//     with surgery: each gradient clipped to norm 1, then per trained tensor
//       g_u <- g_u - lambda * cos(g_u, g_p) * g_p / |g_p| where the cosine is negative, and only
//       g_u is applied (train/trainer.h, ConceptPreservingGradient);
//     without: adversarial + 0.1 * priorWeight * preservation, clipped to norm 1;
//   every step: discriminator = BCE(D(real), 0) + BCE(D(fake.detach()), 1), Adam (0.5, 0.999).
// D is a PatchGAN on latents (conv 4x4 stride 2: 64, 128, 256, 512 channels, batch norm after the
// first, LeakyReLU 0.2, a 1-channel 4x4 conv), in training mode (batch statistics) as in the
// reference; deviation: on latents smaller than SD's 64x64 it keeps only as many blocks as leave a
// patch grid of at least 3x3 (`discriminatorBlocks`, 0 = that rule). Its weights are drawn from the
// job's generator (PyTorch's default initialisation, uniform +-1/sqrt(fan_in)), trained by the
// `discriminator` optimizer, checkpointed with it and never written to the delta.
//
// Lethe's addition (off unless preserveProjection > 0), as for Concept Ablation: the closed-form
// refit of the key/value deltas that keeps the `projection` prompts' token states.
#include <cmath>

#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "erase/method.h"

namespace lethe {

namespace {

// The PatchGAN as plain tensors: its parameters are the discriminator optimizer's, by name.
class PatchDiscriminator {
 public:
  // `blocks` stride-2 blocks on `channels`-channel inputs; weights from `gen`.
  PatchDiscriminator(int64_t channels, int64_t blocks, at::Generator& gen, torch::Device device) {
    static const int64_t widths[] = {64, 128, 256, 512};
    int64_t in = channels;
    for (int64_t b = 0; b <= blocks; ++b) {
      const bool last = b == blocks;
      const int64_t out = last ? 1 : widths[b];
      Layer l;
      const double bound = 1.0 / std::sqrt(static_cast<double>(in * 16));
      l.w = ((at::rand({out, in, 4, 4}, gen, torch::kFloat32) * 2 - 1) * bound).to(device);
      l.b = ((at::rand({out}, gen, torch::kFloat32) * 2 - 1) * bound).to(device);
      if (!last && b > 0) {
        l.gamma = torch::ones({out}, torch::TensorOptions().device(device));
        l.beta = torch::zeros({out}, torch::TensorOptions().device(device));
      }
      layers_.push_back(l);
      in = out;
    }
  }

  torch::Tensor Forward(const torch::Tensor& x) const {
    torch::Tensor h = x;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const Layer& l = layers_[i];
      const bool last = i + 1 == layers_.size();
      h = torch::conv2d(h, l.w, l.b, last ? 1 : 2, 1);
      if (last) break;
      if (l.gamma.defined()) h = torch::batch_norm(h, l.gamma, l.beta, {}, {}, /*training=*/true, 0.1, 1e-5, false);
      h = torch::leaky_relu(h, 0.2);
    }
    return h;
  }

  NamedParams Parameters() const {
    NamedParams out;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const std::string p = "aux.discriminator." + std::to_string(i) + ".";
      out.emplace_back(p + "weight", layers_[i].w);
      out.emplace_back(p + "bias", layers_[i].b);
      if (layers_[i].gamma.defined()) {
        out.emplace_back(p + "norm.weight", layers_[i].gamma);
        out.emplace_back(p + "norm.bias", layers_[i].beta);
      }
    }
    return out;
  }

 private:
  struct Layer {
    torch::Tensor w, b, gamma, beta;
  };
  std::vector<Layer> layers_;
};

// BCE with logits against a constant label, averaged over every patch (torch's BCEWithLogitsLoss).
torch::Tensor PatchBce(const torch::Tensor& logits, double label) {
  return torch::binary_cross_entropy_with_logits(logits, torch::full_like(logits, label));
}

class DocoMethod : public ErasureMethod {
 public:
  explicit DocoMethod(const Napi::Object& o) : training_(o) {
    d_lr_ = OptionNumber(o, "dLr", 1e-4);
    warmup_ = static_cast<int64_t>(OptionNumber(o, "warmup", 500));
    surgery_ = !o.Has("surgery") || o.Get("surgery").ToBoolean().Value();
    lambda_ = OptionNumber(o, "surgeryLambda", 1.0);
    blocks_ = static_cast<int64_t>(OptionNumber(o, "discriminatorBlocks", 0));
    if (!(lambda_ >= 0)) fail(codes::kBadArgument, "surgeryLambda must be >= 0");
    if (!(d_lr_ > 0)) fail(codes::kBadArgument, "dLr must be > 0");
    if (warmup_ < 0) fail(codes::kBadArgument, "warmup must be >= 0");
    if (blocks_ < 0 || blocks_ > 4) fail(codes::kBadArgument, "discriminatorBlocks must be in 0..4 (0: as many as leave a 3x3 patch grid)");
  }

  void Setup(ErasureContext& ctx, OptimizerPlan& optimizers) override {
    training_.Setup(ctx, optimizers, "DoCo");

    // The patch grid after k blocks on an h x w latent is (h/2^k - 1) x (w/2^k - 1).
    const int64_t side = std::min(ctx.latentShape[1], ctx.latentShape[2]);
    auto grid = [side](int64_t k) { return (side >> k) - 1; };
    int64_t blocks = blocks_;
    if (blocks == 0) {
      blocks = 1;
      while (blocks < 4 && grid(blocks + 1) >= 3) ++blocks;
    }
    if (grid(blocks) < 1) fail(codes::kBadArgument, "discriminatorBlocks " + std::to_string(blocks) + " leaves no patch on a " + std::to_string(side) + "-wide latent");
    d_ = std::make_unique<PatchDiscriminator>(ctx.latentShape[0], blocks, ctx.gen, ctx.device());

    const double clip = training_.clipGradNorm;
    if (surgery_) {
      const double lambda = lambda_;
      // Objectives in Step's order: adversarial (g_u), preservation (g_p).
      optimizers.model.edit = [lambda](const std::string&, const std::vector<std::string>& names, const std::vector<torch::Tensor>& g) {
        if (names.size() != 2 || names[0] != "adversarial") fail(codes::kInternal, "DoCo's surgery expects the adversarial and preservation gradients");
        return ConceptPreservingGradient(g[0], g[1], lambda);
      };
      optimizers.model.clipObjectiveNorm = clip;
    } else {
      optimizers.model.clipGradNorm = clip;
    }
    const double dlr = d_lr_;
    // torch.optim.Adam(lr, betas=(0.5, 0.999)): no weight decay.
    optimizers.others.push_back({"discriminator", d_->Parameters(), AdamWOptions{dlr, 0.5, 0.999, 1e-8, 0.0}, [dlr](int64_t) { return dlr; }, nullptr, 0, 0});
  }

  Objectives Step(ErasureContext& ctx) override {
    const int64_t b = training_.batch, n = 2 * b;
    const bool generator = step_ > warmup_;
    ++step_;
    auto t0 = StepClock::now();
    const auto [xt, noiseTarget, t, ts, pair] = training_.samples.Draw(ctx, n);
    const TrainingNoise& noise = training_.samples.noise();
    const torch::Tensor first = pair.slice(0, 0, b);
    const torch::Tensor xtFirst = xt.slice(0, 0, b), tFirst = t.slice(0, 0, b);
    torch::Tensor real;
    {
      c10::InferenceMode guard;
      torch::Tensor anchorStates = ctx.prompts.frozenAll("anchor").index_select(0, first.to(ctx.device()));
      real = noise.PredictX0(xtFirst, ctx.base.denoiser().forward(xtFirst, ts.slice(0, 0, b), anchorStates), tFirst);
    }
    real = real.clone();
    ctx.timings["anchorPredictions"] += SecondsSince(t0);

    t0 = StepClock::now();
    Objectives out;
    torch::Tensor fake;
    if (generator) {
      const torch::Tensor states = torch::cat({ctx.trainedStates("target", first), ctx.trainedStates("anchor", pair.slice(0, b))});
      const torch::Tensor pred = ctx.trained.unet().forward(xt, ts, states).to(torch::kFloat32);
      fake = noise.PredictX0(xtFirst, pred.slice(0, 0, b), tFirst);
      const torch::Tensor adversarial = PatchBce(d_->Forward(fake), 0.0);
      const torch::Tensor preservation = torch::mse_loss(pred.slice(0, b), noiseTarget.slice(0, b));
      // The adversarial gradient reaches the discriminator too: the reference does not clear it
      // before the discriminator's own loss is added (docs/doco.md).
      out.push_back({"adversarial", adversarial, "model,discriminator"});
      // With surgery the preservation gradient only steers the edit; without, it is added at 0.1 w.
      out.push_back({"preservation", surgery_ ? preservation : 0.1 * training_.priorWeight * preservation, "model"});
    } else {
      // Warm-up: only the discriminator learns; the trained model's fake needs no graph.
      torch::NoGradGuard ng;
      const torch::Tensor pred = ctx.trained.unet().forward(xtFirst, ts.slice(0, 0, b), ctx.trainedStates("target", first));
      fake = noise.PredictX0(xtFirst, pred, tFirst);
    }
    const torch::Tensor discriminator = PatchBce(d_->Forward(real), 0.0) + PatchBce(d_->Forward(fake.detach()), 1.0);
    out.push_back({"discriminator", discriminator, "discriminator"});
    ctx.timings["trainedForward"] += SecondsSince(t0);
    return out;
  }

  void Finish(ErasureContext& ctx, std::vector<std::pair<std::string, torch::Tensor>>& delta, Metadata&) override {
    training_.Finish(ctx, delta);
  }

  // The step counter decides warm-up; a resumed run continues it.
  void SaveState(std::vector<std::pair<std::string, torch::Tensor>>& out) const override { out.emplace_back("doco.step", torch::tensor({step_}, torch::kInt64)); }
  void LoadState(const SafetensorsFile& f) override {
    const TensorEntry* e = f.find("doco.step");
    if (!e) fail(codes::kBadCheckpoint, f.path() + ": checkpoint lacks doco.step (written by another method?)");
    step_ = f.Load(*e).to(torch::kInt64).item<int64_t>();
  }

 private:
  bool surgery_ = true;
  double d_lr_, lambda_;
  int64_t warmup_, blocks_, step_ = 0;
  AnchorTraining training_;
  std::unique_ptr<PatchDiscriminator> d_;
};

}  // namespace

LETHE_ERASURE_METHOD("doco", DocoMethod);

}  // namespace lethe
