// diffusers' UNet2DConditionModel for Stable Diffusion 1.x / 2.x, built from its config.json; with a
// MotionAdapter's config.json also diffusers' UNetMotionModel.from_unet2d(unet, adapter) (AnimateDiff):
// the same spatial modules under the same names plus `motion_modules` in every block.
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
  // motion_adapter: a MotionAdapter config.json (its settings are checked against the UNet's).
  explicit UNet2DConditionModelImpl(const Config& config, const Config* motion_adapter = nullptr);
  // sample [B, C, H, W]; timesteps [B] or [1] (float); context [B, N, cross_attention_dim].
  // With motion modules also sample [B, C, F, H, W] (a clip per sample) and context [B, N, dim]
  // (one prompt per clip) or [B * F, N, dim] (per frame, diffusers' layout); the output has the
  // sample's shape. Images given to a motion UNet skip the motion modules.
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timesteps, const torch::Tensor& context);

  int64_t inChannels() const { return in_channels_; }
  bool hasMotion() const { return max_frames_ > 0; }
  int64_t maxFrames() const { return max_frames_; }
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
  int64_t max_frames_ = 0;  // motion_max_seq_length; 0: no motion modules
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks{nullptr}, up_blocks{nullptr};
  MidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace lethe
