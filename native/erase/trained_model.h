// The model an erasure trains (docs/architecture.md, "The trained copy"): copies of the base UNet
// and text encoder in which every selected parameter is a clone that trains and every other tensor
// is the base model's own (shared, not copied: memory ≈ one model + the trained subset + optimizer
// state), plus the new tensors a method declares (`extra.*`). The base model is never changed.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/sd_models.h"
#include "train/trainer.h"

namespace lethe {

class TrainedModel {
 public:
  // `selected`: component -> parameter names (erase/selection.h).
  TrainedModel(SdModels& base, const std::map<std::string, std::vector<std::string>>& selected);

  UNet2DConditionModelImpl& unet() { return *unet_; }                 // always a copy: hooks attach to it alone
  CLIPTextModelImpl& textEncoder() { return text_encoder_ ? *text_encoder_ : base_.textEncoder(); }
  bool trainsTextEncoder() const { return static_cast<bool>(text_encoder_); }
  bool trains(const std::string& qualifiedName) const;

  // The selected parameters, component-qualified (unet.…, text_encoder.…), and the extras.
  const NamedParams& parameters() const { return params_; }
  const NamedParams& extras() const { return extras_; }
  int64_t trainedElements() const;

  // A new trained tensor `extra.<name>` starting at `init` (on the model's device, float32).
  torch::Tensor AddExtra(const std::string& name, const torch::Tensor& init);

  // new − base for every selected parameter, and the extras as they are; float32 on the CPU.
  std::vector<std::pair<std::string, torch::Tensor>> Delta() const;

 private:
  SdModels& base_;
  UNet2DConditionModel unet_{nullptr};
  CLIPTextModel text_encoder_{nullptr};
  NamedParams params_, extras_;
  std::vector<torch::Tensor> base_values_;
};

}  // namespace lethe
