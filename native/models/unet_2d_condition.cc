#include "models/unet_2d_condition.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>

#include "bridge/errors.h"

namespace lethe {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

void require(bool ok, const Config& c, const std::string& what) {
  if (!ok) fail(codes::kBadCheckpoint, c.source() + ": unsupported UNet configuration: " + what);
}

// A MotionAdapter's settings, per block, as diffusers' UNetMotionModel.from_unet2d reads them.
struct MotionSettings {
  std::vector<int64_t> heads, layers;
  int64_t mid_layers = 1, max_seq_length = 32;
  bool mid_block = true;
};

// The settings both forms share; `prefix` names their per-block transformer-layer keys
// ("motion" in a MotionAdapter, "temporal" in a UNetMotionModel).
MotionSettings readMotionSettings(const Config& c, size_t n, const std::string& prefix, const std::function<void(const std::string&)>& refuse) {
  MotionSettings m;
  m.heads = c.perBlock("motion_num_attention_heads", n, 8);
  m.layers = c.perBlock(prefix + "_transformer_layers_per_block", n, 1);  // nested per-layer lists are refused by name
  m.mid_layers = c.perBlock(prefix + "_transformer_layers_per_mid_block", 1, 1)[0];
  m.max_seq_length = c.integer("motion_max_seq_length", 32);
  m.mid_block = c.boolean("use_motion_mid_block", true);
  if (m.max_seq_length < 1) refuse("motion_max_seq_length must be at least 1");
  return m;
}

MotionSettings readMotion(const Config& a, const Config& unet, const std::vector<int64_t>& channels, const std::vector<int64_t>& layers_per_block) {
  auto refuse = [&](const std::string& what) { fail(codes::kBadCheckpoint, a.source() + ": unsupported motion adapter: " + what); };
  const size_t n = channels.size();
  const std::string cls = a.string("_class_name", "MotionAdapter");
  if (cls != "MotionAdapter") refuse("_class_name is " + cls + ", not MotionAdapter");
  if (!a.has("block_out_channels") || a.integers("block_out_channels") != channels)
    refuse("block_out_channels differ from the UNet's (" + unet.source() + "): the adapter was made for another base model");
  if (a.perBlock("motion_layers_per_block", n, 2) != layers_per_block) refuse("motion_layers_per_block differs from the UNet's layers_per_block");
  if (a.has("conv_in_channels")) refuse("conv_in_channels (an adapter with its own input convolution, e.g. SparseCtrl / PIA) is not supported");
  if (a.integer("motion_mid_block_layers_per_block", 1) != 1) refuse("motion_mid_block_layers_per_block must be 1 (diffusers' UNetMotionModel builds one)");
  return readMotionSettings(a, n, "motion", refuse);
}

// A saved UNetMotionModel (AnimateDiffPipeline.save_pretrained's unet/) carries the same settings
// under its own keys, and its weights hold the motion modules already.
MotionSettings readMotionUnet(const Config& c, size_t n) {
  auto refuse = [&](const std::string& what) { fail(codes::kBadCheckpoint, c.source() + ": unsupported UNetMotionModel configuration: " + what); };
  if (c.integer("mid_block_layers", 1) != 1) refuse("mid_block_layers must be 1");
  MotionSettings m = readMotionSettings(c, n, "temporal", refuse);
  const std::vector<int64_t> reversed_heads(m.heads.rbegin(), m.heads.rend()), reversed_layers(m.layers.rbegin(), m.layers.rend());
  if (c.has("reverse_motion_num_attention_heads") && c.perBlock("reverse_motion_num_attention_heads", n, 8) != reversed_heads)
    refuse("reverse_motion_num_attention_heads other than the reversed motion_num_attention_heads");
  if (c.has("reverse_temporal_transformer_layers_per_block") && c.perBlock("reverse_temporal_transformer_layers_per_block", n, 1) != reversed_layers)
    refuse("reverse_temporal_transformer_layers_per_block other than the reversed temporal_transformer_layers_per_block");
  return m;
}

// UNetMotionModel's block names for the same blocks with motion modules.
std::string imageBlockType(const std::string& t) {
  static const std::map<std::string, std::string> kMotion = {{"CrossAttnDownBlockMotion", "CrossAttnDownBlock2D"}, {"DownBlockMotion", "DownBlock2D"},
                                                             {"CrossAttnUpBlockMotion", "CrossAttnUpBlock2D"}, {"UpBlockMotion", "UpBlock2D"}};
  auto it = kMotion.find(t);
  return it == kMotion.end() ? t : it->second;
}

}  // namespace

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in, int64_t dim) {
  linear_1 = register_module("linear_1", nn::Linear(in, dim));
  linear_2 = register_module("linear_2", nn::Linear(dim, dim));
}

torch::Tensor TimestepEmbeddingImpl::forward(const torch::Tensor& x) { return linear_2(F::silu(linear_1(x))); }

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const Config& c, const Config* motion_adapter) {
  in_channels_ = c.integer("in_channels", 4);
  const int64_t out_channels = c.integer("out_channels", 4);
  const std::vector<int64_t> channels = c.has("block_out_channels") ? c.integers("block_out_channels") : std::vector<int64_t>{320, 640, 1280, 1280};
  const size_t n = channels.size();
  const bool motion_unet = c.string("_class_name", "UNet2DConditionModel") == "UNetMotionModel";
  if (motion_unet && motion_adapter)
    fail(codes::kBadArgument, c.source() + " is a UNetMotionModel: it holds its motion modules already; load it without a motion adapter");
  std::vector<std::string> down_types = c.has("down_block_types") ? c.strings("down_block_types")
      : std::vector<std::string>{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"};
  std::vector<std::string> up_types = c.has("up_block_types") ? c.strings("up_block_types")
      : std::vector<std::string>{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  if (motion_unet) {
    for (auto& t : down_types) t = imageBlockType(t);
    for (auto& t : up_types) t = imageBlockType(t);
  }
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
  std::optional<MotionSettings> motion;
  if (motion_adapter) motion = readMotion(*motion_adapter, c, channels, layers);
  if (motion_unet) {
    motion = readMotionUnet(c, n);
    require(!c.has("transformer_layers_per_mid_block") || c.perBlock("transformer_layers_per_mid_block", 1, 1)[0] == transformer_layers.back(), c,
            "transformer_layers_per_mid_block other than the last block's transformer_layers_per_block");
  }
  if (motion) max_frames_ = motion->max_seq_length;
  auto motionOptions = [&](int64_t heads, int64_t transformer_layers) {
    // diffusers' motion blocks take the UNet's norm_num_groups (resnet_groups) for their group norm.
    return MotionOptions{heads, transformer_layers, motion->max_seq_length, groups};
  };

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
    if (motion) o.motion = motionOptions(motion->heads[i], motion->layers[i]);
    down_blocks->push_back(DownBlock(o));
  }

  BlockOptions mid = base(n - 1);
  mid.in_channels = mid.out_channels = channels.back();
  mid.num_layers = 1;
  mid.with_attention = true;
  mid.output_scale_factor = c.number("mid_block_scale_factor", 1.0);
  if (motion && motion->mid_block) mid.motion = motionOptions(motion->heads.back(), motion->mid_layers);
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
    if (motion) o.motion = motionOptions(motion->heads[r], motion->layers[r]);  // diffusers reverses both lists
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

torch::Tensor UNet2DConditionModelImpl::forward(const torch::Tensor& input, const torch::Tensor& timesteps, const torch::Tensor& text) {
  if (input.dim() != 4 && !(input.dim() == 5 && hasMotion()))
    fail(codes::kShapeMismatch, hasMotion() ? "sample must be [batch, channels, frames, height, width] (or [batch, channels, height, width])"
                                            : "sample must be [batch, channels, height, width]" + std::string(input.dim() == 5 ? "; a clip needs a motion adapter" : ""));
  const int64_t batch = input.size(0);
  if (timesteps.numel() != 1 && timesteps.numel() != batch)
    fail(codes::kShapeMismatch, "timesteps must hold 1 or " + std::to_string(batch) + " values, got " + std::to_string(timesteps.numel()));
  torch::Tensor temb = time_embedding(timestepEmbedding(timesteps, batch, input.scalar_type()));

  // A clip runs as batch * frames images (frames of a clip consecutive, as diffusers' permute and
  // reshape order them); the time embedding and a per-clip prompt repeat per frame.
  const int64_t frames = input.dim() == 5 ? input.size(2) : 0;
  torch::Tensor sample = input, context = text;
  if (frames > 0) {
    if (frames > max_frames_) fail(codes::kShapeMismatch, std::to_string(frames) + " frames exceed the motion adapter's motion_max_seq_length " + std::to_string(max_frames_));
    sample = input.permute({0, 2, 1, 3, 4}).reshape({batch * frames, input.size(1), input.size(3), input.size(4)});
    temb = temb.repeat_interleave(frames, 0);
    if (context.size(0) == batch && frames > 1) context = context.repeat_interleave(frames, 0);
    else if (context.size(0) != batch * frames)
      fail(codes::kShapeMismatch, "context batch must be the clips' (" + std::to_string(batch) + ") or clips x frames (" + std::to_string(batch * frames) + "), got " + std::to_string(context.size(0)));
  }

  // Sizes that are not a multiple of the total upsampling factor need explicit upsample sizes.
  const int64_t factor = int64_t{1} << num_upsamplers_;
  const bool explicit_sizes = sample.size(2) % factor != 0 || sample.size(3) % factor != 0;

  torch::Tensor x = conv_in(sample);
  std::vector<torch::Tensor> skips{x};
  for (const auto& m : *down_blocks) {
    DownOutput d = m->as<DownBlockImpl>()->forward(x, temb, context, frames);
    x = d.hidden;
    skips.insert(skips.end(), d.skips.begin(), d.skips.end());
  }
  x = mid_block->forward(x, temb, context, frames);
  for (size_t i = 0; i < up_blocks->size(); ++i) {
    auto* up = up_blocks[i]->as<UpBlockImpl>();
    std::vector<torch::Tensor> mine(skips.end() - up->numResnets(), skips.end());
    skips.resize(skips.size() - up->numResnets());
    std::optional<std::vector<int64_t>> size;
    if (explicit_sizes && up->hasUpsampler()) size = std::vector<int64_t>{skips.back().size(2), skips.back().size(3)};
    x = up->forward(x, mine, temb, context, size, frames);
  }
  x = conv_out(F::silu(conv_norm_out(x)));
  if (frames > 0) x = x.reshape({batch, frames, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4}).contiguous();
  return x;
}

}  // namespace lethe
