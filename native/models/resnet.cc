#include "models/resnet.h"

namespace lethe {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetBlock2DOptions& o) : o_(o) {
  norm1 = register_module("norm1", nn::GroupNorm(nn::GroupNormOptions(o.groups, o.in_channels).eps(o.eps)));
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(o.in_channels, o.out_channels, 3).padding(1)));
  if (o.temb_channels > 0) time_emb_proj = register_module("time_emb_proj", nn::Linear(o.temb_channels, o.out_channels));
  norm2 = register_module("norm2", nn::GroupNorm(nn::GroupNormOptions(o.groups, o.out_channels).eps(o.eps)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(o.out_channels, o.out_channels, 3).padding(1)));
  if (o.in_channels != o.out_channels)
    conv_shortcut = register_module("conv_shortcut", nn::Conv2d(nn::Conv2dOptions(o.in_channels, o.out_channels, 1)));
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  torch::Tensor h = conv1(F::silu(norm1(x)));
  if (time_emb_proj && temb.defined()) h = h + time_emb_proj(F::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2(F::silu(norm2(h)));
  torch::Tensor shortcut = conv_shortcut ? conv_shortcut(x) : x;
  torch::Tensor out = shortcut + h;
  return o_.output_scale_factor == 1.0 ? out : out / o_.output_scale_factor;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding) : padding_(padding) {
  conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(channels, out_channels, 3).stride(2).padding(padding)));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  if (padding_ == 0) return conv(F::pad(x, F::PadFuncOptions({0, 1, 0, 1})));
  return conv(x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels, int64_t out_channels) {
  conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(channels, out_channels, 3).padding(1)));
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x, const std::optional<std::vector<int64_t>>& size) {
  auto opts = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (size) opts.size(*size);
  else opts.scale_factor(std::vector<double>{2.0, 2.0});
  return conv(F::interpolate(x, opts));
}

}  // namespace lethe
