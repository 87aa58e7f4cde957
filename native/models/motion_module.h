// diffusers' AnimateDiffTransformer3D (unets/unet_motion_model.py): AnimateDiff's motion module, a
// transformer over the frame axis at every pixel. Submodule names follow diffusers, so a
// MotionAdapter's `down_blocks.i.motion_modules.j.<name>` keys load as they are.
#pragma once
#include <torch/torch.h>

#include "models/attention.h"

namespace lethe {

struct MotionOptions {
  int64_t heads = 8;           // motion_num_attention_heads (head dim = channels / heads)
  int64_t layers = 1;          // transformer layers per motion module
  int64_t max_seq_length = 32; // frames the positional table covers
  int64_t groups = 32;         // the UNet's norm_num_groups (diffusers' UNetMotionModel uses it, not the adapter's)
};

class MotionModuleImpl : public torch::nn::Module {
 public:
  MotionModuleImpl(int64_t channels, const MotionOptions& o);
  // x [batch * frames, C, H, W], frames of one sample consecutive; returns the same shape.
  torch::Tensor forward(const torch::Tensor& x, int64_t frames);
  int64_t maxFrames() const { return max_seq_length_; }

 private:
  int64_t max_seq_length_;
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList transformer_blocks{nullptr};
};
TORCH_MODULE(MotionModule);

}  // namespace lethe
