#include "models/unet_2d_condition.h"

#include <cmath>

#include "bridge/errors.h"

namespace lethe {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

void require(bool ok, const Config& c, const std::string& what) {
  if (!ok) fail(codes::kBadCheckpoint, c.source() + ": unsupported UNet configuration: " + what);
}

}  // namespace

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in, int64_t dim) {
  linear_1 = register_module("linear_1", nn::Linear(in, dim));
  linear_2 = register_module("linear_2", nn::Linear(dim, dim));
}

torch::Tensor TimestepEmbeddingImpl::forward(const torch::Tensor& x) { return linear_2(F::silu(linear_1(x))); }

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const Config& c) {
  in_channels_ = c.integer("in_channels", 4);
  const int64_t out_channels = c.integer("out_channels", 4);
  const std::vector<int64_t> channels = c.has("block_out_channels") ? c.integers("block_out_channels") : std::vector<int64_t>{320, 640, 1280, 1280};
  const size_t n = channels.size();
  const std::vector<std::string> down_types = c.has("down_block_types") ? c.strings("down_block_types")
      : std::vector<std::string>{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
  const std::vector<std::string> up_types = c.has("up_block_types") ? c.strings("up_block_types")
      : std::vector<std::string>{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  require(down_types.size() == n && up_types.size() == n, c, "down/up_block_types must have one entry per block_out_channels");
  require(c.string("mid_block_type", "UNetMidBlock2DCrossAttn") == "UNetMidBlock2DCrossAttn", c, "mid_block_type must be UNetMidBlock2DCrossAttn");
  require(!c.has("class_embed_type") && !c.has("addition_embed_type"), c, "class/addition embeddings (SDXL, upscalers) are not supported yet");
  require(c.string("time_embedding_type", "positional") == "positional", c, "time_embedding_type must be positional");
  require(c.string("resnet_time_scale_shift", "default") == "default", c, "resnet_time_scale_shift must be default");
  require(c.string("act_fn", "silu") == "silu", c, "act_fn must be silu");
  require(!c.boolean("dual_cross_attention", false), c, "dual_cross_attention is not supported");
  require(c.integer("conv_in_kernel", 3) == 3 && c.integer("conv_out_kernel", 3) == 3, c, "conv kernels must be 3");
  require(!c.has("time_cond_proj_dim") && !c.has("encoder_hid_dim"), c, "time_cond_proj_dim / encoder_hid_dim are not supported");
  require(!c.has("transformer_layers_per_block") || !c.has("reverse_transformer_layers_per_block"), c, "reverse_transformer_layers_per_block is not supported");

  const std::vector<int64_t> layers = c.perBlock("layers_per_block", n, 2);
  // diffusers' naming quirk: `attention_head_dim` is the number of heads unless num_attention_heads is given.
  const std::vector<int64_t> heads = c.has("num_attention_heads") ? c.perBlock("num_attention_heads", n, 8) : c.perBlock("attention_head_dim", n, 8);
  const std::vector<int64_t> cross_dims = c.perBlock("cross_attention_dim", n, 1280);
  const std::vector<int64_t> transformer_layers = c.perBlock("transformer_layers_per_block", n, 1);
  const std::vector<bool> only_cross = c.perBlockBool("only_cross_attention", n, false);
  cross_attention_dim_ = cross_dims.back();
  const int64_t groups = c.integer("norm_num_groups", 32);
  const double eps = c.number("norm_eps", 1e-5);
  const bool linear_proj = c.boolean("use_linear_projection", false);
  const bool upcast = c.boolean("upcast_attention", false);
  flip_sin_to_cos_ = c.boolean("flip_sin_to_cos", true);
  freq_shift_ = c.number("freq_shift", 0);
  time_proj_dim_ = channels[0];
  const int64_t temb = c.integer("time_embedding_dim", channels[0] * 4);

  conv_in = register_module("conv_in", nn::Conv2d(nn::Conv2dOptions(in_channels_, channels[0], 3).padding(1)));
  time_embedding = register_module("time_embedding", TimestepEmbedding(time_proj_dim_, temb));

  auto base = [&](size_t i) {
    BlockOptions o;
    o.temb_channels = temb;
    o.groups = groups;
    o.eps = eps;
    o.heads = heads[i];
    o.transformer_layers = transformer_layers[i];
    o.cross_attention_dim = cross_dims[i];
    o.use_linear_projection = linear_proj;
    o.only_cross_attention = only_cross[i];
    o.upcast_attention = upcast;
    return o;
  };

  down_blocks = register_module("down_blocks", nn::ModuleList());
  int64_t out = channels[0];
  for (size_t i = 0; i < n; ++i) {
    require(down_types[i] == "CrossAttnDownBlock2D" || down_types[i] == "DownBlock2D", c, "down block type " + down_types[i]);
    BlockOptions o = base(i);
    o.in_channels = out;
    out = o.out_channels = channels[i];
    o.num_layers = layers[i];
    o.with_attention = down_types[i] == "CrossAttnDownBlock2D";
    o.resample = i + 1 < n;
    o.downsample_padding = c.integer("downsample_padding", 1);
    down_blocks->push_back(DownBlock(o));
  }

  BlockOptions mid = base(n - 1);
  mid.in_channels = mid.out_channels = channels.back();
  mid.num_layers = 1;
  mid.with_attention = true;
  mid.output_scale_factor = c.number("mid_block_scale_factor", 1.0);
  mid_block = register_module("mid_block", MidBlock(mid, 0));

  up_blocks = register_module("up_blocks", nn::ModuleList());
  out = channels.back();
  for (size_t i = 0; i < n; ++i) {
    const size_t r = n - 1 - i;  // reversed index
    require(up_types[i] == "CrossAttnUpBlock2D" || up_types[i] == "UpBlock2D", c, "up block type " + up_types[i]);
    BlockOptions o = base(r);
    o.prev_output_channels = out;
    out = o.out_channels = channels[r];
    o.in_channels = channels[r == 0 ? 0 : r - 1];
    o.num_layers = layers[r] + 1;
    o.with_attention = up_types[i] == "CrossAttnUpBlock2D";
    o.resample = i + 1 < n;
    if (o.resample) ++num_upsamplers_;
    up_blocks->push_back(UpBlock(o));
  }

  conv_norm_out = register_module("conv_norm_out", nn::GroupNorm(nn::GroupNormOptions(groups, channels[0]).eps(eps)));
  conv_out = register_module("conv_out", nn::Conv2d(nn::Conv2dOptions(channels[0], out_channels, 3).padding(1)));
}

std::vector<std::pair<std::string, AttentionImpl*>> UNet2DConditionModelImpl::crossAttentionLayers() {
  std::vector<std::pair<std::string, AttentionImpl*>> out;
  for (const auto& m : named_modules("", false)) {
    const std::string& name = m.key();
    if (name.size() < 6 || name.compare(name.size() - 6, 6, ".attn2") != 0) continue;
    if (auto* a = dynamic_cast<AttentionImpl*>(m.value().get())) out.emplace_back(name, a);
  }
  return out;
}

// Sinusoidal embedding exactly as diffusers' get_timestep_embedding (computed in float32).
torch::Tensor UNet2DConditionModelImpl::timestepEmbedding(const torch::Tensor& timesteps, int64_t batch, torch::ScalarType dtype) const {
  const int64_t half = time_proj_dim_ / 2;
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(timesteps.device());
  torch::Tensor exponent = torch::arange(0, half, f32) * (-std::log(10000.0)) / (half - freq_shift_);
  torch::Tensor t = timesteps.to(torch::kFloat32).reshape({-1}).expand({batch});
  torch::Tensor emb = t.unsqueeze(1) * torch::exp(exponent).unsqueeze(0);
  emb = torch::cat({torch::sin(emb), torch::cos(emb)}, -1);
  if (flip_sin_to_cos_) emb = torch::cat({emb.slice(1, half), emb.slice(1, 0, half)}, -1);
  if (time_proj_dim_ % 2 == 1) emb = F::pad(emb, F::PadFuncOptions({0, 1, 0, 0}));
  return emb.to(dtype);
}

torch::Tensor UNet2DConditionModelImpl::forward(const torch::Tensor& sample, const torch::Tensor& timesteps, const torch::Tensor& context) {
  const int64_t batch = sample.size(0);
  if (timesteps.numel() != 1 && timesteps.numel() != batch)
    fail(codes::kShapeMismatch, "timesteps must hold 1 or " + std::to_string(batch) + " values, got " + std::to_string(timesteps.numel()));
  torch::Tensor temb = time_embedding(timestepEmbedding(timesteps, batch, sample.scalar_type()));

  // Sizes that are not a multiple of the total upsampling factor need explicit upsample sizes.
  const int64_t factor = int64_t{1} << num_upsamplers_;
  const bool explicit_sizes = sample.size(2) % factor != 0 || sample.size(3) % factor != 0;

  torch::Tensor x = conv_in(sample);
  std::vector<torch::Tensor> skips{x};
  for (const auto& m : *down_blocks) {
    DownOutput d = m->as<DownBlockImpl>()->forward(x, temb, context);
    x = d.hidden;
    skips.insert(skips.end(), d.skips.begin(), d.skips.end());
  }
  x = mid_block->forward(x, temb, context);
  for (size_t i = 0; i < up_blocks->size(); ++i) {
    auto* up = up_blocks[i]->as<UpBlockImpl>();
    std::vector<torch::Tensor> mine(skips.end() - up->numResnets(), skips.end());
    skips.resize(skips.size() - up->numResnets());
    std::optional<std::vector<int64_t>> size;
    if (explicit_sizes && up->hasUpsampler()) size = std::vector<int64_t>{skips.back().size(2), skips.back().size(3)};
    x = up->forward(x, mine, temb, context, size);
  }
  return conv_out(F::silu(conv_norm_out(x)));
}

}  // namespace lethe
