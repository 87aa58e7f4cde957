#include "models/attention.h"

#include <cmath>

#include "bridge/errors.h"

namespace lethe {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

AttentionImpl::AttentionImpl(const AttentionOptions& o) : o_(o) {
  const int64_t inner = o.heads * o.dim_head;
  const int64_t kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : o.query_dim;
  if (o.group_norm_groups > 0)
    group_norm = register_module("group_norm", nn::GroupNorm(nn::GroupNormOptions(o.group_norm_groups, o.query_dim).eps(o.group_norm_eps)));
  to_q = register_module("to_q", nn::Linear(nn::LinearOptions(o.query_dim, inner).bias(o.qkv_bias)));
  to_k = register_module("to_k", nn::Linear(nn::LinearOptions(kv_dim, inner).bias(o.qkv_bias)));
  to_v = register_module("to_v", nn::Linear(nn::LinearOptions(kv_dim, inner).bias(o.qkv_bias)));
  out_proj = nn::Linear(inner, o.query_dim);
  to_out = register_module("to_out", nn::ModuleList());
  to_out->push_back(out_proj);  // to_out.0; diffusers' to_out.1 is a parameterless dropout
}

void AttentionImpl::checkMemory(const AttentionMemory& memory) const {
  if (!isCrossAttention()) fail(codes::kBadArgument, "memory tokens are for cross-attention layers (attn2) only");
  const int64_t dim = o_.cross_attention_dim;
  for (const torch::Tensor* t : {&memory.k, &memory.v})
    if (!t->defined() || (t->dim() != 2 && t->dim() != 3) || t->size(-1) != dim || t->size(-2) < 1)
      fail(codes::kShapeMismatch, "memory tokens must be [tokens, " + std::to_string(dim) + "] or [batch, tokens, " + std::to_string(dim) + "]");
  if (memory.k.size(-2) != memory.v.size(-2)) fail(codes::kShapeMismatch, "memory keys and values must have the same number of tokens");
}

void AttentionImpl::setMemory(std::shared_ptr<const AttentionMemory> memory) {
  if (memory) checkMemory(*memory);
  memory_ = std::move(memory);
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const torch::Tensor& ctx = context.defined() ? context : x;
  const int64_t b = x.size(0);
  auto split = [&](const torch::Tensor& t) { return t.view({b, -1, o_.heads, o_.dim_head}).transpose(1, 2); };
  torch::Tensor kin = ctx, vin = ctx;
  if (memory_ && context.defined()) {
    auto join = [&](const torch::Tensor& m) {
      torch::Tensor mem = (m.dim() == 2 ? m.unsqueeze(0).expand({b, m.size(0), m.size(1)}) : m).to(ctx.device(), ctx.scalar_type());
      if (mem.size(0) != b) fail(codes::kShapeMismatch, "memory tokens have batch " + std::to_string(mem.size(0)) + ", the input " + std::to_string(b));
      return torch::cat({ctx, mem}, 1);
    };
    kin = join(memory_->k);
    vin = join(memory_->v);
  }
  torch::Tensor kp = to_k(kin), vp = to_v(vin);
  if (detach_start_token_ && context.defined() && kp.size(1) > 1) {
    kp = torch::cat({kp.slice(1, 0, 1).detach(), kp.slice(1, 1)}, 1);
    vp = torch::cat({vp.slice(1, 0, 1).detach(), vp.slice(1, 1)}, 1);
  }
  torch::Tensor q = split(to_q(x)), k = split(kp), v = split(vp);
  torch::Tensor out;
  if (o_.upcast_attention && q.scalar_type() != torch::kFloat32) {
    out = at::scaled_dot_product_attention(q.to(torch::kFloat32), k.to(torch::kFloat32), v.to(torch::kFloat32)).to(q.scalar_type());
  } else {
    out = at::scaled_dot_product_attention(q, k, v);
  }
  out = out.transpose(1, 2).reshape({b, -1, o_.heads * o_.dim_head});
  return out_proj(out);
}

torch::Tensor AttentionImpl::forwardSpatial(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor seq = group_norm(x).view({b, c, h * w}).transpose(1, 2);
  torch::Tensor out = forward(seq);
  return out.transpose(1, 2).reshape({b, c, h, w}) + x;
}

GEGLUImpl::GEGLUImpl(int64_t dim_in, int64_t dim_out) { proj = register_module("proj", nn::Linear(dim_in, dim_out * 2)); }

torch::Tensor GEGLUImpl::forward(const torch::Tensor& x) {
  auto parts = proj(x).chunk(2, -1);
  return parts[0] * F::gelu(parts[1]);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  geglu = GEGLU(dim, dim * mult);
  out = nn::Linear(dim * mult, dim);
  auto net = register_module("net", nn::ModuleList());
  net->push_back(geglu);
  net->push_back(nn::Dropout(0.0));  // keeps diffusers' numbering: net.0, net.1 (dropout), net.2
  net->push_back(out);
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) { return out(geglu(x)); }

SinusoidalPositionalEmbeddingImpl::SinusoidalPositionalEmbeddingImpl(int64_t dim, int64_t max_seq_length) {
  // The table as diffusers builds it (float32): position * exp(-log(10000) * 2i / dim).
  torch::Tensor position = torch::arange(max_seq_length, torch::kFloat32).unsqueeze(1);
  torch::Tensor div = torch::exp(torch::arange(0, dim, 2, torch::kFloat32) * (-std::log(10000.0) / static_cast<double>(dim)));
  torch::Tensor table = torch::zeros({1, max_seq_length, dim});
  table.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)}, torch::sin(position * div));
  table.index_put_({0, torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)}, torch::cos(position * div).slice(1, 0, dim / 2));
  pe = register_buffer("pe", table);
}

torch::Tensor SinusoidalPositionalEmbeddingImpl::forward(const torch::Tensor& x) {
  if (x.size(1) > pe.size(1))
    fail(codes::kShapeMismatch, "a sequence of " + std::to_string(x.size(1)) + " exceeds the positional embedding's " + std::to_string(pe.size(1)) + " positions");
  return x + pe.slice(1, 0, x.size(1)).to(x.scalar_type());
}

BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, const TransformerOptions& o) : only_cross_attention_(o.only_cross_attention) {
  auto ln = [&] { return nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-5)); };
  AttentionOptions self{dim, o.only_cross_attention ? o.cross_attention_dim : 0, o.heads, o.dim_head};
  self.upcast_attention = o.upcast_attention;
  AttentionOptions cross{dim, o.cross_attention_dim, o.heads, o.dim_head};
  cross.upcast_attention = o.upcast_attention;
  norm1 = register_module("norm1", ln());
  attn1 = register_module("attn1", Attention(self));
  norm2 = register_module("norm2", ln());
  attn2 = register_module("attn2", Attention(cross));
  norm3 = register_module("norm3", ln());
  ff = register_module("ff", FeedForward(dim));
  if (o.sinusoidal_positions > 0) pos_embed = register_module("pos_embed", SinusoidalPositionalEmbedding(dim, o.sinusoidal_positions));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  auto positioned = [&](torch::Tensor t) { return pos_embed ? pos_embed(t) : t; };
  torch::Tensor h = attn1(positioned(norm1(x)), only_cross_attention_ ? context : torch::Tensor()) + x;
  h = attn2(positioned(norm2(h)), context) + h;
  return ff(norm3(h)) + h;
}

Transformer2DModelImpl::Transformer2DModelImpl(const TransformerOptions& o) : o_(o) {
  const int64_t inner = o.heads * o.dim_head;
  norm = register_module("norm", nn::GroupNorm(nn::GroupNormOptions(o.groups, o.in_channels).eps(1e-6)));
  if (o.use_linear_projection) proj_in_linear = register_module("proj_in", nn::Linear(o.in_channels, inner));
  else proj_in_conv = register_module("proj_in", nn::Conv2d(nn::Conv2dOptions(o.in_channels, inner, 1)));
  transformer_blocks = register_module("transformer_blocks", nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) transformer_blocks->push_back(BasicTransformerBlock(inner, o));
  if (o.use_linear_projection) proj_out_linear = register_module("proj_out", nn::Linear(inner, o.in_channels));
  else proj_out_conv = register_module("proj_out", nn::Conv2d(nn::Conv2dOptions(inner, o.in_channels, 1)));
}

torch::Tensor Transformer2DModelImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t inner = o_.heads * o_.dim_head;
  torch::Tensor t = norm(x);
  if (o_.use_linear_projection) {
    t = proj_in_linear(t.permute({0, 2, 3, 1}).reshape({b, h * w, x.size(1)}));
  } else {
    t = proj_in_conv(t).permute({0, 2, 3, 1}).reshape({b, h * w, inner});
  }
  for (const auto& block : *transformer_blocks) t = block->as<BasicTransformerBlockImpl>()->forward(t, context);
  if (o_.use_linear_projection) {
    t = proj_out_linear(t).reshape({b, h, w, x.size(1)}).permute({0, 3, 1, 2});
  } else {
    t = proj_out_conv(t.reshape({b, h, w, inner}).permute({0, 3, 1, 2}).contiguous());
  }
  return t + x;
}

}  // namespace lethe
