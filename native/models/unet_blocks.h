// diffusers' UNet blocks (unets/unet_2d_blocks.py) used by Stable Diffusion 1.x/2.x:
// CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D / UpBlock2D,
// and the VAE's DownEncoderBlock2D / UpDecoderBlock2D / UNetMidBlock2D.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <vector>

#include "models/attention.h"
#include "models/motion_module.h"
#include "models/resnet.h"

namespace lethe {

struct BlockOptions {
  int64_t in_channels;
  int64_t out_channels;
  int64_t prev_output_channels = 0;  // up blocks
  int64_t temb_channels = 0;
  int64_t num_layers = 2;
  int64_t transformer_layers = 1;
  int64_t groups = 32;
  double eps = 1e-5;
  bool with_attention = false;  // CrossAttn* variants
  bool resample = true;         // add a down/up sampler
  int64_t downsample_padding = 1;
  double output_scale_factor = 1.0;
  // Cross-attention transformer settings.
  int64_t heads = 8;
  int64_t cross_attention_dim = 768;
  bool use_linear_projection = false;
  bool only_cross_attention = false;
  bool upcast_attention = false;
  // AnimateDiff (diffusers' *BlockMotion): a motion module after each resnet (and its attention);
  // in the mid block after the attention, before the next resnet.
  std::optional<MotionOptions> motion;
};

// Outputs of a down block: the hidden state and the skip connections it contributes.
struct DownOutput {
  torch::Tensor hidden;
  std::vector<torch::Tensor> skips;
};

class DownBlockImpl : public torch::nn::Module {
 public:
  explicit DownBlockImpl(const BlockOptions& o);
  // frames > 0: x holds clips of that many consecutive frames (motion modules run); 0: images.
  DownOutput forward(torch::Tensor x, const torch::Tensor& temb, const torch::Tensor& context, int64_t frames = 0);
  int64_t numResnets() const { return static_cast<int64_t>(resnets->size()); }

 private:
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, motion_modules{nullptr}, downsamplers{nullptr};
};
TORCH_MODULE(DownBlock);

class UpBlockImpl : public torch::nn::Module {
 public:
  explicit UpBlockImpl(const BlockOptions& o);
  // `skips` are consumed from the back, one per resnet.
  torch::Tensor forward(torch::Tensor x, std::vector<torch::Tensor>& skips, const torch::Tensor& temb, const torch::Tensor& context,
                        const std::optional<std::vector<int64_t>>& upsample_size, int64_t frames = 0);
  int64_t numResnets() const { return static_cast<int64_t>(resnets->size()); }
  bool hasUpsampler() const { return !upsamplers->is_empty(); }

 private:
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, motion_modules{nullptr}, upsamplers{nullptr};
};
TORCH_MODULE(UpBlock);

// UNetMidBlock2DCrossAttn (with_attention + cross attention) or the VAE's UNetMidBlock2D
// (spatial self-attention, `vae_attention_head_dim` > 0).
class MidBlockImpl : public torch::nn::Module {
 public:
  MidBlockImpl(const BlockOptions& o, int64_t vae_attention_head_dim);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& temb, const torch::Tensor& context, int64_t frames = 0);

 private:
  bool spatial_;
  torch::nn::ModuleList resnets{nullptr}, attentions{nullptr}, motion_modules{nullptr};
};
TORCH_MODULE(MidBlock);

}  // namespace lethe
