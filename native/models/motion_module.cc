#include "models/motion_module.h"

#include "bridge/errors.h"

namespace lethe {

namespace nn = torch::nn;

MotionModuleImpl::MotionModuleImpl(int64_t channels, const MotionOptions& o) : max_seq_length_(o.max_seq_length) {
  if (o.heads < 1 || channels % o.heads != 0)
    fail(codes::kBadCheckpoint, "motion_num_attention_heads " + std::to_string(o.heads) + " does not divide the block's " + std::to_string(channels) + " channels");
  norm = register_module("norm", nn::GroupNorm(nn::GroupNormOptions(o.groups, channels).eps(1e-6)));
  proj_in = register_module("proj_in", nn::Linear(channels, channels));
  TransformerOptions t;
  t.heads = o.heads;
  t.dim_head = channels / o.heads;
  t.in_channels = channels;
  t.cross_attention_dim = 0;  // attn2 is a second temporal self-attention
  t.sinusoidal_positions = o.max_seq_length;
  transformer_blocks = register_module("transformer_blocks", nn::ModuleList());
  for (int64_t i = 0; i < o.layers; ++i) transformer_blocks->push_back(BasicTransformerBlock(channels, t));
  proj_out = register_module("proj_out", nn::Linear(channels, channels));
}

torch::Tensor MotionModuleImpl::forward(const torch::Tensor& x, int64_t frames) {
  const int64_t bf = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  if (frames < 1 || bf % frames != 0) fail(codes::kShapeMismatch, "a batch of " + std::to_string(bf) + " is not a whole number of " + std::to_string(frames) + "-frame clips");
  if (frames > max_seq_length_) fail(codes::kShapeMismatch, std::to_string(frames) + " frames exceed the motion module's " + std::to_string(max_seq_length_));
  const int64_t b = bf / frames;
  // Group norm over (C, frames, H, W) per clip, as diffusers' [B, C, F, H, W] layout does.
  torch::Tensor t = norm(x.reshape({b, frames, c, h, w}).permute({0, 2, 1, 3, 4}));
  t = proj_in(t.permute({0, 3, 4, 2, 1}).reshape({b * h * w, frames, c}));
  for (const auto& block : *transformer_blocks) t = block->as<BasicTransformerBlockImpl>()->forward(t, torch::Tensor());
  t = proj_out(t).reshape({b, h, w, frames, c}).permute({0, 3, 4, 1, 2}).reshape({bf, c, h, w});
  return t + x;
}

}  // namespace lethe
