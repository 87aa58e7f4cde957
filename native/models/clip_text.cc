#include "models/clip_text.h"

#include "bridge/errors.h"

namespace lethe {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(int64_t hidden, int64_t heads, int64_t intermediate, double eps, bool quick_gelu)
    : heads_(heads), quick_gelu_(quick_gelu) {
  auto attn = register_module("self_attn", std::make_shared<nn::Module>());
  q_proj = attn->register_module("q_proj", nn::Linear(hidden, hidden));
  k_proj = attn->register_module("k_proj", nn::Linear(hidden, hidden));
  v_proj = attn->register_module("v_proj", nn::Linear(hidden, hidden));
  out_proj = attn->register_module("out_proj", nn::Linear(hidden, hidden));
  layer_norm1 = register_module("layer_norm1", nn::LayerNorm(nn::LayerNormOptions({hidden}).eps(eps)));
  auto mlp = register_module("mlp", std::make_shared<nn::Module>());
  fc1 = mlp->register_module("fc1", nn::Linear(hidden, intermediate));
  fc2 = mlp->register_module("fc2", nn::Linear(intermediate, hidden));
  layer_norm2 = register_module("layer_norm2", nn::LayerNorm(nn::LayerNormOptions({hidden}).eps(eps)));
}

torch::Tensor CLIPEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& causal_mask) {
  const int64_t b = x.size(0), n = x.size(1), c = x.size(2);
  auto split = [&](const torch::Tensor& t) { return t.view({b, n, heads_, c / heads_}).transpose(1, 2); };
  torch::Tensor h = layer_norm1(x);
  torch::Tensor a = at::scaled_dot_product_attention(split(q_proj(h)), split(k_proj(h)), split(v_proj(h)), causal_mask);
  h = x + out_proj(a.transpose(1, 2).reshape({b, n, c}));
  torch::Tensor m = fc1(layer_norm2(h));
  m = quick_gelu_ ? m * torch::sigmoid(1.702 * m) : F::gelu(m);
  return h + fc2(m);
}

CLIPTextModelImpl::CLIPTextModelImpl(const Config& c) {
  hidden_ = c.integer("hidden_size", 512);
  vocab_ = c.integer("vocab_size", 49408);
  max_positions_ = c.integer("max_position_embeddings", 77);
  const int64_t heads = c.integer("num_attention_heads", 8);
  const int64_t intermediate = c.integer("intermediate_size", 2048);
  const int64_t num_layers = c.integer("num_hidden_layers", 12);
  const double eps = c.number("layer_norm_eps", 1e-5);
  const std::string act = c.string("hidden_act", "quick_gelu");
  if (act != "quick_gelu" && act != "gelu") fail(codes::kBadCheckpoint, c.source() + ": hidden_act '" + act + "' is not supported (quick_gelu or gelu)");
  if (hidden_ % heads != 0) fail(codes::kBadCheckpoint, c.source() + ": hidden_size must be a multiple of num_attention_heads");

  auto text_model = register_module("text_model", std::make_shared<nn::Module>());
  auto embeddings = text_model->register_module("embeddings", std::make_shared<nn::Module>());
  token_embedding = embeddings->register_module("token_embedding", nn::Embedding(vocab_, hidden_));
  position_embedding = embeddings->register_module("position_embedding", nn::Embedding(max_positions_, hidden_));
  auto encoder = text_model->register_module("encoder", std::make_shared<nn::Module>());
  layers = encoder->register_module("layers", nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) layers->push_back(CLIPEncoderLayer(hidden_, heads, intermediate, eps, act == "quick_gelu"));
  final_layer_norm = text_model->register_module("final_layer_norm", nn::LayerNorm(nn::LayerNormOptions({hidden_}).eps(eps)));
}

torch::Tensor CLIPTextModelImpl::forward(const torch::Tensor& ids, int64_t skip, bool final_norm) {
  const int64_t n = ids.size(1);
  if (n > max_positions_) fail(codes::kShapeMismatch, "token sequence of " + std::to_string(n) + " exceeds max_position_embeddings " + std::to_string(max_positions_));
  if (skip < 0 || skip >= numLayers()) fail(codes::kBadArgument, "clip skip must be in 0.." + std::to_string(numLayers() - 1));
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= vocab_))
    fail(codes::kBadArgument, "token id out of range for a vocabulary of " + std::to_string(vocab_));
  auto opts = torch::TensorOptions().device(ids.device());
  torch::Tensor x = token_embedding(ids) + position_embedding(torch::arange(n, opts.dtype(torch::kLong))).unsqueeze(0);
  // Additive causal mask: position i sees positions <= i.
  torch::Tensor mask = torch::full({n, n}, -std::numeric_limits<float>::infinity(), opts.dtype(x.scalar_type())).triu(1);
  const int64_t run = numLayers() - skip;
  for (int64_t i = 0; i < run; ++i) x = layers[i]->as<CLIPEncoderLayerImpl>()->forward(x, mask);
  return final_norm ? final_layer_norm(x) : x;
}

}  // namespace lethe
