// diffusers' UNet2DConditionModel for Stable Diffusion 1.x / 2.x, built from its config.json.
#pragma once
#include <torch/torch.h>

#include "models/config.h"
#include "models/unet_blocks.h"

namespace lethe {

// diffusers' TimestepEmbedding: linear_1 -> SiLU -> linear_2.
class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t in, int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionModelImpl(const Config& config);
  // sample [B, C, H, W]; timesteps [B] or [1] (float); context [B, N, cross_attention_dim]
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timesteps, const torch::Tensor& context);

  int64_t inChannels() const { return in_channels_; }
  // Every cross-attention layer (attn2) by its module name, e.g.
  // "mid_block.attentions.0.transformer_blocks.0.attn2", in module order.
  std::vector<std::pair<std::string, AttentionImpl*>> crossAttentionLayers();
  int64_t crossAttentionDim() const { return cross_attention_dim_; }

 private:
  torch::Tensor timestepEmbedding(const torch::Tensor& timesteps, int64_t batch, torch::ScalarType dtype) const;

  int64_t in_channels_, cross_attention_dim_, time_proj_dim_;
  bool flip_sin_to_cos_;
  double freq_shift_;
  int64_t num_upsamplers_ = 0;
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  MidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace lethe
