// transformers' CLIPTextModel (text_model.*), built from its config.json. Covers SD 1.x's
// CLIP ViT-L/14 text tower and SD 2.x's OpenCLIP ViT-H tower converted to CLIPTextModel form.
#pragma once
#include <torch/torch.h>

#include "models/config.h"

namespace lethe {

class CLIPEncoderLayerImpl : public torch::nn::Module {
 public:
  CLIPEncoderLayerImpl(int64_t hidden, int64_t heads, int64_t intermediate, double eps, bool quick_gelu);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& causal_mask);

 private:
  int64_t heads_;
  bool quick_gelu_;
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr}, fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

class CLIPTextModelImpl : public torch::nn::Module {
 public:
  explicit CLIPTextModelImpl(const Config& config);
  // ids [B, N] int64. Returns the hidden state `skip` layers before the last, passed through the
  // final layer norm (skip 0: last_hidden_state; skip 1: diffusers' clip_skip=1). With
  // `final_norm` false, the raw hidden state of that layer (transformers' hidden_states[-1-skip]).
  torch::Tensor forward(const torch::Tensor& ids, int64_t skip = 0, bool final_norm = true);
  int64_t hiddenSize() const { return hidden_; }
  int64_t maxPositions() const { return max_positions_; }
  int64_t vocabSize() const { return vocab_; }
  int64_t numLayers() const { return static_cast<int64_t>(layers->size()); }

 private:
  int64_t hidden_, max_positions_, vocab_;
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(CLIPTextModel);

}  // namespace lethe
