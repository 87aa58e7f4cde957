// The shapes world's judge: a small CNN with one head per attribute (shape incl. Sunny, color,
// style, poster-or-not). It ships with the bundled model (classifier/) and scores generated images.
#pragma once
#include <torch/torch.h>

#include "models/config.h"

namespace lethe {

struct ClassifierOutput {
  torch::Tensor shape, color, style, poster;  // logits
};

class ShapesClassifierImpl : public torch::nn::Module {
 public:
  explicit ShapesClassifierImpl(const Config& config);
  // images: float [B, 3, 64, 64] in [0, 1]
  ClassifierOutput forward(const torch::Tensor& images);
  int64_t imageSize() const { return image_size_; }

 private:
  int64_t image_size_;
  torch::nn::Sequential features{nullptr};
  torch::nn::Linear shape_head{nullptr}, color_head{nullptr}, style_head{nullptr}, poster_head{nullptr};
};
TORCH_MODULE(ShapesClassifier);

}  // namespace lethe
