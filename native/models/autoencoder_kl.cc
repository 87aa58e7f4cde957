#include "models/autoencoder_kl.h"

#include "bridge/errors.h"

namespace lethe {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {
std::vector<int64_t> blockChannels(const Config& c) {
  return c.has("block_out_channels") ? c.integers("block_out_channels") : std::vector<int64_t>{64};
}
}  // namespace

VaeCoderImpl::VaeCoderImpl(const Config& c, bool encoder) : encoder_(encoder) {
  const std::vector<int64_t> ch = blockChannels(c);
  const size_t n = ch.size();
  const int64_t groups = c.integer("norm_num_groups", 32);
  const int64_t layers = c.integer("layers_per_block", 1);
  const int64_t latent = c.integer("latent_channels", 4);
  if (c.string("act_fn", "silu") != "silu") fail(codes::kBadCheckpoint, c.source() + ": act_fn must be silu");
  const std::string want = encoder ? "DownEncoderBlock2D" : "UpDecoderBlock2D";
  if (c.has(encoder ? "down_block_types" : "up_block_types"))
    for (const auto& t : c.strings(encoder ? "down_block_types" : "up_block_types"))
      if (t != want) fail(codes::kBadCheckpoint, c.source() + ": unsupported VAE block type " + t);

  auto block = [&](int64_t in, int64_t out, int64_t num_layers, bool resample) {
    BlockOptions o;
    o.in_channels = in;
    o.out_channels = out;
    o.num_layers = num_layers;
    o.groups = groups;
    o.eps = 1e-6;
    o.resample = resample;
    o.downsample_padding = 0;
    return o;
  };

  conv_in = register_module("conv_in", nn::Conv2d(nn::Conv2dOptions(encoder ? c.integer("in_channels", 3) : latent, encoder ? ch[0] : ch.back(), 3).padding(1)));
  blocks = register_module(encoder ? "down_blocks" : "up_blocks", nn::ModuleList());
  if (encoder) {
    int64_t out = ch[0];
    for (size_t i = 0; i < n; ++i) {
      int64_t in = out;
      out = ch[i];
      blocks->push_back(DownBlock(block(in, out, layers, i + 1 < n)));
    }
  }
  BlockOptions mid = block(ch.back(), ch.back(), 1, false);
  const bool mid_attention = c.boolean("mid_block_add_attention", true);
  if (!mid_attention) fail(codes::kBadCheckpoint, c.source() + ": mid_block_add_attention=false is not supported");
  mid_block = register_module("mid_block", MidBlock(mid, ch.back()));
  if (!encoder) {
    int64_t out = ch.back();
    for (size_t i = 0; i < n; ++i) {
      int64_t in = out;
      out = ch[n - 1 - i];
      blocks->push_back(UpBlock(block(in, out, layers + 1, i + 1 < n)));
    }
  }
  const int64_t last = encoder ? ch.back() : ch[0];
  conv_norm_out = register_module("conv_norm_out", nn::GroupNorm(nn::GroupNormOptions(groups, last).eps(1e-6)));
  const int64_t out_ch = encoder ? 2 * latent : c.integer("out_channels", 3);  // encoder: mean and logvar
  conv_out = register_module("conv_out", nn::Conv2d(nn::Conv2dOptions(last, out_ch, 3).padding(1)));
}

torch::Tensor VaeCoderImpl::forward(torch::Tensor x) {
  x = conv_in(x);
  std::vector<torch::Tensor> no_skips;
  if (encoder_) {
    for (const auto& m : *blocks) x = m->as<DownBlockImpl>()->forward(x, {}, {}).hidden;
    x = mid_block->forward(x, {}, {});
  } else {
    x = mid_block->forward(x, {}, {});
    for (const auto& m : *blocks) x = m->as<UpBlockImpl>()->forward(x, no_skips, {}, {}, std::nullopt);
  }
  return conv_out(F::silu(conv_norm_out(x)));
}

AutoencoderKLImpl::AutoencoderKLImpl(const Config& c) {
  scaling_factor_ = c.number("scaling_factor", 0.18215);
  latent_channels_ = c.integer("latent_channels", 4);
  downscale_ = int64_t{1} << (blockChannels(c).size() - 1);
  if (c.has("shift_factor")) fail(codes::kBadCheckpoint, c.source() + ": shift_factor (SD3/Flux VAEs) is not supported");
  encoder = register_module("encoder", VaeCoder(c, true));
  decoder = register_module("decoder", VaeCoder(c, false));
  if (c.boolean("use_quant_conv", true))
    quant_conv = register_module("quant_conv", nn::Conv2d(nn::Conv2dOptions(2 * latent_channels_, 2 * latent_channels_, 1)));
  if (c.boolean("use_post_quant_conv", true))
    post_quant_conv = register_module("post_quant_conv", nn::Conv2d(nn::Conv2dOptions(latent_channels_, latent_channels_, 1)));
}

LatentDistribution AutoencoderKLImpl::encode(const torch::Tensor& images) {
  torch::Tensor moments = encoder(images);
  if (quant_conv) moments = quant_conv(moments);
  auto parts = moments.chunk(2, 1);
  return {parts[0], torch::clamp(parts[1], -30.0, 20.0)};
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& latents) {
  torch::Tensor z = post_quant_conv ? post_quant_conv(latents) : latents;
  return decoder(z);
}

}  // namespace lethe
