// diffusers' Attention (AttnProcessor2_0 math), FeedForward (GEGLU), BasicTransformerBlock and
// Transformer2DModel, plus the VAE's spatial self-attention. Submodule names follow diffusers.
#pragma once
#include <torch/torch.h>

namespace lethe {

struct AttentionOptions {
  int64_t query_dim;
  int64_t cross_attention_dim = 0;  // 0: self-attention
  int64_t heads = 8;
  int64_t dim_head = 64;
  bool qkv_bias = false;
  bool upcast_attention = false;  // compute scores in fp32 when running in half precision
  int64_t group_norm_groups = 0;  // > 0: the VAE's form (group norm on a 4-D input, residual)
  double group_norm_eps = 1e-6;
};

// Memory tokens of a cross-attention layer (docs/architecture.md, "Cross-attention memory"): extra
// key and value tokens that join the text's token states before the key and value projections,
//   K = W_k [c; P_k],  V = W_v [c; P_v],
// so every query attends to text and memory in one softmax (the learnable-prompt paper's form;
// IP-Adapter's second attention with its own projections is the other shape, not this one).
// k and v: [m, Cc] shared by the batch, or [B, m, Cc]. Several layers may share one memory.
struct AttentionMemory {
  torch::Tensor k, v;
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& o);
  // Sequence form: x [B, N, C], context [B, M, Cc] (undefined for self-attention).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context = {});
  // Cross-attention only; null removes it. The tensors are read at every call (a trained memory's
  // updates are seen at once).
  void setMemory(std::shared_ptr<const AttentionMemory> memory);
  void checkMemory(const AttentionMemory& memory) const;  // LETHE_SHAPE_MISMATCH / LETHE_BAD_ARGUMENT
  const std::shared_ptr<const AttentionMemory>& memory() const { return memory_; }
  bool isCrossAttention() const { return o_.cross_attention_dim > 0; }
  // Cross-attention only: the key and value of the first context token (the start token) carry no
  // gradient, as Concept Ablation's reference does while it trains (its values are unchanged).
  void setDetachStartToken(bool on) { detach_start_token_ = on; }
  // The VAE's form: x [B, C, H, W]; group norm, attention over H*W, residual.
  torch::Tensor forwardSpatial(const torch::Tensor& x);

 private:
  AttentionOptions o_;
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out{nullptr};
  torch::nn::Linear out_proj{nullptr};
  torch::nn::GroupNorm group_norm{nullptr};
  std::shared_ptr<const AttentionMemory> memory_;
  bool detach_start_token_ = false;
};
TORCH_MODULE(Attention);

// net.0 = GEGLU(dim -> 2*inner), net.1 = dropout, net.2 = Linear(inner -> dim)
class GEGLUImpl : public torch::nn::Module {
 public:
  GEGLUImpl(int64_t dim_in, int64_t dim_out);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(GEGLU);

class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t mult = 4);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  GEGLU geglu{nullptr};
  torch::nn::Linear out{nullptr};
};
TORCH_MODULE(FeedForward);

// diffusers' SinusoidalPositionalEmbedding: adds a fixed sin/cos table over the sequence axis
// (AnimateDiff's motion modules, where the sequence is the frames). `pe` [1, max_seq_length, dim]
// is a buffer, as in diffusers' state dict; the loaded table must be the one computed here.
class SinusoidalPositionalEmbeddingImpl : public torch::nn::Module {
 public:
  SinusoidalPositionalEmbeddingImpl(int64_t dim, int64_t max_seq_length);
  torch::Tensor forward(const torch::Tensor& x);  // x [B, N, dim], N <= max_seq_length
  int64_t maxSeqLength() const { return pe.size(1); }

 private:
  torch::Tensor pe;
};
TORCH_MODULE(SinusoidalPositionalEmbedding);

struct TransformerOptions {
  int64_t heads;
  int64_t dim_head;
  int64_t in_channels;
  int64_t num_layers = 1;
  int64_t cross_attention_dim = 768;
  int64_t groups = 32;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool upcast_attention = false;
  // > 0: a sinusoidal positional embedding over this many positions is added to the normed input
  // of each attention (diffusers' positional_embeddings="sinusoidal"). cross_attention_dim 0 with
  // it makes attn2 a second self-attention (double_self_attention), AnimateDiff's temporal block.
  int64_t sinusoidal_positions = 0;
};

class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  BasicTransformerBlockImpl(int64_t dim, const TransformerOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

 private:
  bool only_cross_attention_;
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
  SinusoidalPositionalEmbedding pos_embed{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const TransformerOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context);

 private:
  TransformerOptions o_;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};
  torch::nn::Linear proj_in_linear{nullptr}, proj_out_linear{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
};
TORCH_MODULE(Transformer2DModel);

}  // namespace lethe
