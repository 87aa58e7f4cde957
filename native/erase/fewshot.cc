// Few-shot text-encoder unlearning (Fuchi & Takagi, BMVC 2024), following the reference training
// loop (train.py of fmp453/few-shot-erasing) on latents the TypeScript side encoded once
// (src/erase/methods/fewshot.ts, docs/fewshot.md): gradient *ascent* on the denoising loss with
// respect to the text encoder only, the UNet frozen.
//   per epoch: a permutation of the N images (the reference's shuffled DataLoader), cut into
//   batches of `batch` (the last one smaller when N is not a multiple, as drop_last=False);
//   per batch, from the job's generator in this order: the permutation (at an epoch's first
//   batch), template indices ~ U{0..P-1}^b, eps ~ N(0, I) [b, C, h, w], t ~ U{0..T-1}^b;
//   x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps (diffusers' add_noise, float32);
//   loss = -MSE(eps_theta(x_t, tau_phi(p), t), eps)   (v = sqrt(a) eps - sqrt(1-a) x0 under v-prediction).
// The optimizer is the reference's torch.optim.Adam: L2 weight decay added to the gradient, not
// AdamW's decoupled decay.
// Zero-shot (`zeroShot` > 0): the reference's torch.rand latents (uniform in [0, 1)), `zeroShot`
// of them, drawn from the job's generator before the first step instead of encoded images.
//
// Lethe's addition (`embeddingRows`, te-params concept-embedding): only the token-embedding rows of
// the concept's own tokens train; every other row gets no gradient and no weight decay (the L2 term
// is applied to those rows alone, in the gradient hook), so prompts without the concept's tokens
// are unchanged bit for bit.
//
// Prompt group: train (the concept in each template; the generator picks one per image).
#include "bridge/options.h"
#include "bridge/tensor_convert.h"
#include "erase/method.h"

namespace lethe {

namespace {

class FewShotTextEncoderMethod : public ErasureMethod {
 public:
  explicit FewShotTextEncoderMethod(const Napi::Object& o) : noise_(o) {
    batch_ = static_cast<int64_t>(OptionNumber(o, "batch", 2));
    beta1_ = OptionNumber(o, "beta1", 0.9);
    beta2_ = OptionNumber(o, "beta2", 0.98);
    adam_eps_ = OptionNumber(o, "adamEps", 1e-6);
    weight_decay_ = OptionNumber(o, "weightDecay", 1e-8);
    zero_shot_ = static_cast<int64_t>(OptionNumber(o, "zeroShot", 0));
    if (batch_ < 1 || batch_ > 256) fail(codes::kBadArgument, "batch must be in 1..256");
    if (!(beta1_ >= 0 && beta1_ < 1) || !(beta2_ >= 0 && beta2_ < 1) || !(adam_eps_ > 0) || !(weight_decay_ >= 0))
      fail(codes::kBadArgument, "beta1 and beta2 must be in [0, 1), adamEps > 0, weightDecay >= 0");
    if (zero_shot_ < 0 || zero_shot_ > 4096) fail(codes::kBadArgument, "zeroShot must be in 0..4096");
    if (zero_shot_ == 0) {
      latents_ = RequireTensor(o, "latents").to(torch::kFloat32);
      if (latents_.dim() != 4 || latents_.size(0) < 1) fail(codes::kShapeMismatch, "latents must be [images, channels, height, width]");
      if (!torch::isfinite(latents_).all().item<bool>()) fail(codes::kNonFinite, "the images' latents hold NaN or infinity: check the images and the VAE (or its dtype)");
    }
    if (o.Has("embeddingRows")) {
      embedding_rows_ = RequireTensor(o, "embeddingRows").to(torch::kInt64);
      if (embedding_rows_.dim() != 1 || embedding_rows_.size(0) < 1) fail(codes::kBadArgument, "embeddingRows must be a non-empty list of token ids");
    }
  }

  void Setup(ErasureContext& ctx, OptimizerPlan& optimizers) override {
    if (ctx.prompts.count("train") == 0) fail(codes::kBadArgument, "few-shot unlearning needs the prompt group train (the concept in its templates)");
    for (const auto& [name, _] : ctx.trained.parameters())
      if (name.rfind("text_encoder.", 0) != 0) fail(codes::kBadArgument, "few-shot unlearning trains the text encoder only, the UNet stays frozen; '" + name + "' is a UNet parameter");
    if (!ctx.trained.trainsTextEncoder())
      fail(codes::kBadArgument, "few-shot unlearning trains the text encoder: select text_encoder parameters (--te-params mlp-final-attn, mlp, attn, all, embedding)");
    noise_.Setup(ctx);
    std::vector<int64_t> shape{zero_shot_};
    shape.insert(shape.end(), ctx.latentShape.begin(), ctx.latentShape.end());
    if (zero_shot_ > 0) {
      latents_ = at::rand(shape, ctx.gen, torch::kFloat32);
    } else {
      shape[0] = latents_.size(0);
      if (latents_.sizes().vec() != shape) fail(codes::kShapeMismatch, "the images' latents do not have this model's latent shape");
    }
    latents_ = latents_.to(ctx.device());
    auto& opt = optimizers.model.options;
    opt.beta1 = beta1_;
    opt.beta2 = beta2_;
    opt.eps = adam_eps_;
    opt.weight_decay = weight_decay_;
    opt.decoupled = false;
    if (embedding_rows_.defined()) RestrictEmbeddingRows(ctx, opt);
  }

  Objectives Step(ErasureContext& ctx) override {
    const int64_t n = latents_.size(0);
    if (position_ == 0) order_ = torch::randperm(n, ctx.gen, torch::kLong);
    const int64_t b = std::min(batch_, n - position_);
    const torch::Tensor idx = order_.slice(0, position_, position_ + b);
    position_ = position_ + b == n ? 0 : position_ + b;
    const torch::Tensor prompt = torch::randint(ctx.prompts.count("train"), {b}, ctx.gen, torch::kLong);
    std::vector<int64_t> shape{b};
    shape.insert(shape.end(), ctx.latentShape.begin(), ctx.latentShape.end());
    const torch::Tensor eps = at::randn(shape, ctx.gen, torch::kFloat32).to(ctx.device());
    const torch::Tensor t = torch::randint(ctx.trainTimesteps, {b}, ctx.gen, torch::kLong).to(ctx.device());

    const auto t0 = StepClock::now();
    const torch::Tensor x0 = latents_.index_select(0, idx.to(ctx.device()));
    const auto [xt, target] = noise_.Add(ctx, x0, eps, t);
    const torch::Tensor states = ctx.trainedStates("train", prompt);
    const torch::Tensor out = ctx.trained.unet().forward(xt, t.to(torch::kFloat32), states).to(torch::kFloat32);
    // Ascent: the objective minimised is the negated denoising loss.
    const torch::Tensor loss = -torch::mse_loss(out, target);
    ctx.timings["forward"] += SecondsSince(t0);
    return {{"loss", loss, ""}};
  }

  void RestrictEmbeddingRows(ErasureContext& ctx, AdamWOptions& opt) {
    torch::Tensor weight;
    for (const auto& [name, p] : ctx.trained.parameters())
      if (name.size() >= 22 && name.compare(name.size() - 22, 22, "token_embedding.weight") == 0) weight = p;
      else fail(codes::kBadArgument, "concept-embedding trains the token embedding alone; '" + name + "' is selected too");
    if (!weight.defined()) fail(codes::kBadArgument, "concept-embedding needs the text encoder's token embedding selected");
    const int64_t vocab = weight.size(0);
    if (embedding_rows_.min().item<int64_t>() < 0 || embedding_rows_.max().item<int64_t>() >= vocab)
      fail(codes::kBadArgument, "embeddingRows holds a token id outside the vocabulary of " + std::to_string(vocab));
    torch::Tensor mask = torch::zeros({vocab, 1}, torch::TensorOptions().dtype(weight.scalar_type()).device(weight.device()));
    mask.index_fill_(0, embedding_rows_.to(weight.device()), 1.0);
    const double wd = opt.weight_decay;
    opt.weight_decay = 0;
    // The hook holds a detached alias (same storage, so it sees the optimizer's in-place steps), not
    // the parameter itself: the parameter holding its own hook would never be freed.
    const torch::Tensor values = weight.detach();
    weight.register_hook([mask, values, wd](const torch::Tensor& g) { return (wd != 0 ? g + wd * values : g) * mask; });
  }

  // A resumed run continues the epoch it stopped in: its permutation and position (zero-shot latents
  // need no saving: Setup draws them from the freshly seeded generator before the restore).
  void SaveState(std::vector<std::pair<std::string, torch::Tensor>>& out) const override {
    out.emplace_back("method.fewshot.position", torch::tensor({position_}, torch::kInt64));
    if (order_.defined()) out.emplace_back("method.fewshot.order", order_);
  }

  void LoadState(const SafetensorsFile& f) override {
    position_ = f.Load(f.require("method.fewshot.position", "the few-shot epoch position")).item<int64_t>();
    if (position_ > 0) order_ = f.Load(f.require("method.fewshot.order", "the few-shot epoch order")).to(torch::kInt64);
    if (position_ < 0 || (position_ > 0 && (order_.dim() != 1 || order_.size(0) != latents_.size(0) || position_ >= latents_.size(0))))
      fail(codes::kBadCheckpoint, "the checkpoint's few-shot epoch state does not match the images");
  }

 private:
  int64_t batch_, zero_shot_ = 0, position_ = 0;
  double beta1_, beta2_, adam_eps_, weight_decay_;
  torch::Tensor latents_, order_, embedding_rows_;
  TrainingNoise noise_;
};

}  // namespace

LETHE_ERASURE_METHOD("fewshot", FewShotTextEncoderMethod);

}  // namespace lethe
