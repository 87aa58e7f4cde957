#include "models/shapes_classifier.h"

namespace lethe {

namespace nn = torch::nn;

ShapesClassifierImpl::ShapesClassifierImpl(const Config& c) {
  image_size_ = c.integer("image_size", 64);
  const std::vector<int64_t> widths = c.has("channels") ? c.integers("channels") : std::vector<int64_t>{32, 64, 128, 128};
  features = register_module("features", nn::Sequential());
  int64_t in = 3;
  for (int64_t w : widths) {
    // conv-GN-ReLU twice, then 2x2 max-pool: 64 -> 32 -> 16 -> 8 -> 4
    features->push_back(nn::Conv2d(nn::Conv2dOptions(in, w, 3).padding(1)));
    features->push_back(nn::GroupNorm(nn::GroupNormOptions(8, w)));
    features->push_back(nn::ReLU());
    features->push_back(nn::Conv2d(nn::Conv2dOptions(w, w, 3).padding(1)));
    features->push_back(nn::GroupNorm(nn::GroupNormOptions(8, w)));
    features->push_back(nn::ReLU());
    features->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    in = w;
  }
  features->push_back(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)));
  features->push_back(nn::Flatten());
  shape_head = register_module("shape_head", nn::Linear(in, c.integer("num_shapes", 8)));
  color_head = register_module("color_head", nn::Linear(in, c.integer("num_colors", 6)));
  style_head = register_module("style_head", nn::Linear(in, c.integer("num_styles", 4)));
  poster_head = register_module("poster_head", nn::Linear(in, 2));
}

ClassifierOutput ShapesClassifierImpl::forward(const torch::Tensor& images) {
  torch::Tensor h = features->forward(images * 2 - 1);
  return {shape_head(h), color_head(h), style_head(h), poster_head(h)};
}

}  // namespace lethe
