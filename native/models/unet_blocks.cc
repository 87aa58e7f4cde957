#include "models/unet_blocks.h"

namespace lethe {

namespace nn = torch::nn;

namespace {

TransformerOptions transformerOptions(const BlockOptions& o) {
  TransformerOptions t;
  t.heads = o.heads;
  t.dim_head = o.out_channels / o.heads;
  t.in_channels = o.out_channels;
  t.num_layers = o.transformer_layers;
  t.cross_attention_dim = o.cross_attention_dim;
  t.groups = o.groups;
  t.use_linear_projection = o.use_linear_projection;
  t.only_cross_attention = o.only_cross_attention;
  t.upcast_attention = o.upcast_attention;
  return t;
}

ResnetBlock2D resnet(const BlockOptions& o, int64_t in, int64_t out) {
  ResnetBlock2DOptions r{in, out, o.temb_channels, o.groups, o.eps, o.output_scale_factor};
  return ResnetBlock2D(r);
}

// Motion modules run only on clips (frames > 0); a motion UNet given images skips them.
torch::Tensor motion(nn::ModuleList modules, size_t i, const torch::Tensor& x, int64_t frames) {
  if (!modules || frames <= 0) return x;
  return modules[i]->as<MotionModuleImpl>()->forward(x, frames);
}

nn::ModuleList motionModules(nn::Module& block, const BlockOptions& o, int64_t count, int64_t channels) {
  if (!o.motion) return nullptr;
  auto list = block.register_module("motion_modules", nn::ModuleList());
  for (int64_t i = 0; i < count; ++i) list->push_back(MotionModule(channels, *o.motion));
  return list;
}

}  // namespace

DownBlockImpl::DownBlockImpl(const BlockOptions& o) {
  resnets = register_module("resnets", nn::ModuleList());
  if (o.with_attention) attentions = register_module("attentions", nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    resnets->push_back(resnet(o, i == 0 ? o.in_channels : o.out_channels, o.out_channels));
    if (o.with_attention) attentions->push_back(Transformer2DModel(transformerOptions(o)));
  }
  motion_modules = motionModules(*this, o, o.num_layers, o.out_channels);
  if (o.resample) {
    downsamplers = register_module("downsamplers", nn::ModuleList());
    downsamplers->push_back(Downsample2D(o.out_channels, o.out_channels, o.downsample_padding));
  }
}

DownOutput DownBlockImpl::forward(torch::Tensor x, const torch::Tensor& temb, const torch::Tensor& context, int64_t frames) {
  DownOutput out;
  for (size_t i = 0; i < resnets->size(); ++i) {
    x = resnets[i]->as<ResnetBlock2DImpl>()->forward(x, temb);
    if (attentions) x = attentions[i]->as<Transformer2DModelImpl>()->forward(x, context);
    x = motion(motion_modules, i, x, frames);
    out.skips.push_back(x);
  }
  if (downsamplers) {
    x = downsamplers[0]->as<Downsample2DImpl>()->forward(x);
    out.skips.push_back(x);
  }
  out.hidden = x;
  return out;
}

UpBlockImpl::UpBlockImpl(const BlockOptions& o) {
  resnets = register_module("resnets", nn::ModuleList());
  if (o.with_attention) attentions = register_module("attentions", nn::ModuleList());
  for (int64_t i = 0; i < o.num_layers; ++i) {
    // UNet up blocks concatenate a skip; the VAE's UpDecoderBlock2D (prev_output_channels 0) does not.
    const bool unet = o.prev_output_channels > 0;
    int64_t in = i == 0 ? (unet ? o.prev_output_channels : o.in_channels) : o.out_channels;
    if (unet) in += (i == o.num_layers - 1) ? o.in_channels : o.out_channels;
    resnets->push_back(resnet(o, in, o.out_channels));
    if (o.with_attention) attentions->push_back(Transformer2DModel(transformerOptions(o)));
  }
  motion_modules = motionModules(*this, o, o.num_layers, o.out_channels);
  upsamplers = register_module("upsamplers", nn::ModuleList());
  if (o.resample) upsamplers->push_back(Upsample2D(o.out_channels, o.out_channels));
}

torch::Tensor UpBlockImpl::forward(torch::Tensor x, std::vector<torch::Tensor>& skips, const torch::Tensor& temb,
                                   const torch::Tensor& context, const std::optional<std::vector<int64_t>>& upsample_size, int64_t frames) {
  for (size_t i = 0; i < resnets->size(); ++i) {
    if (!skips.empty()) {
      x = torch::cat({x, skips.back()}, 1);
      skips.pop_back();
    }
    x = resnets[i]->as<ResnetBlock2DImpl>()->forward(x, temb);
    if (attentions) x = attentions[i]->as<Transformer2DModelImpl>()->forward(x, context);
    x = motion(motion_modules, i, x, frames);
  }
  if (!upsamplers->is_empty()) x = upsamplers[0]->as<Upsample2DImpl>()->forward(x, upsample_size);
  return x;
}

MidBlockImpl::MidBlockImpl(const BlockOptions& o, int64_t vae_attention_head_dim) : spatial_(vae_attention_head_dim > 0) {
  resnets = register_module("resnets", nn::ModuleList());
  attentions = register_module("attentions", nn::ModuleList());
  resnets->push_back(resnet(o, o.in_channels, o.in_channels));
  for (int64_t i = 0; i < o.num_layers; ++i) {
    if (spatial_) {
      AttentionOptions a{o.in_channels, 0, o.in_channels / vae_attention_head_dim, vae_attention_head_dim};
      a.qkv_bias = true;
      a.group_norm_groups = o.groups;
      a.group_norm_eps = o.eps;
      attentions->push_back(Attention(a));
    } else {
      BlockOptions t = o;
      t.out_channels = o.in_channels;
      attentions->push_back(Transformer2DModel(transformerOptions(t)));
    }
    resnets->push_back(resnet(o, o.in_channels, o.in_channels));
  }
  motion_modules = motionModules(*this, o, o.num_layers, o.in_channels);
}

torch::Tensor MidBlockImpl::forward(torch::Tensor x, const torch::Tensor& temb, const torch::Tensor& context, int64_t frames) {
  x = resnets[0]->as<ResnetBlock2DImpl>()->forward(x, temb);
  for (size_t i = 0; i < attentions->size(); ++i) {
    x = spatial_ ? attentions[i]->as<AttentionImpl>()->forwardSpatial(x) : attentions[i]->as<Transformer2DModelImpl>()->forward(x, context);
    x = motion(motion_modules, i, x, frames);
    x = resnets[i + 1]->as<ResnetBlock2DImpl>()->forward(x, temb);
  }
  return x;
}

}  // namespace lethe
