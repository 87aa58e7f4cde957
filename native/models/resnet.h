// diffusers' ResnetBlock2D, Downsample2D and Upsample2D (resnet.py, downsampling.py,
// upsampling.py), with the same submodule names so state-dict keys match one for one.
#pragma once
#include <torch/torch.h>

#include <optional>

namespace lethe {

struct ResnetBlock2DOptions {
  int64_t in_channels;
  int64_t out_channels;
  int64_t temb_channels = 0;  // 0: no time embedding (VAE)
  int64_t groups = 32;
  double eps = 1e-6;
  double output_scale_factor = 1.0;
};

class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock2DImpl(const ResnetBlock2DOptions& o);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb = {});

 private:
  ResnetBlock2DOptions o_;
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  torch::nn::Linear time_emb_proj{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

// Stride-2 3x3 conv. padding 0 means diffusers' asymmetric (0,1,0,1) pad first (the VAE encoder).
class Downsample2DImpl : public torch::nn::Module {
 public:
  Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t padding_;
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample2D);

// Nearest-neighbour x2 (or to an explicit size when the input was not a multiple), then 3x3 conv.
class Upsample2DImpl : public torch::nn::Module {
 public:
  Upsample2DImpl(int64_t channels, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x, const std::optional<std::vector<int64_t>>& size = std::nullopt);

 private:
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace lethe
