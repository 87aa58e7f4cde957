// diffusers' AutoencoderKL (Encoder, Decoder, quant convs), built from its config.json.
#pragma once
#include <torch/torch.h>

#include "models/config.h"
#include "models/unet_blocks.h"

namespace lethe {

class VaeCoderImpl : public torch::nn::Module {
 public:
  VaeCoderImpl(const Config& c, bool encoder);
  torch::Tensor forward(torch::Tensor x);

 private:
  bool encoder_;
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  MidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};
};
TORCH_MODULE(VaeCoder);

struct LatentDistribution {
  torch::Tensor mean, logvar;
};

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const Config& config);
  LatentDistribution encode(const torch::Tensor& images);  // images in [-1, 1]
  torch::Tensor decode(const torch::Tensor& latents);      // latents already divided by scaling_factor
  double scalingFactor() const { return scaling_factor_; }
  int64_t latentChannels() const { return latent_channels_; }
  int64_t downscale() const { return downscale_; }

 private:
  double scaling_factor_;
  int64_t latent_channels_, downscale_;
  VaeCoder encoder{nullptr}, decoder{nullptr};
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};
TORCH_MODULE(AutoencoderKL);

}  // namespace lethe
