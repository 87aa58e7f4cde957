#include "erase/trained_model.h"

#include <algorithm>
#include <set>

#include "bridge/errors.h"

namespace lethe {

namespace {

// Parameters of `copy` named in `names` become clones of the base's (trained); all others share
// the base's tensors. Returns the trained ones in module order, prefixed with `prefix`.
void ShareExcept(torch::nn::Module& copy, torch::nn::Module& base, const std::vector<std::string>& names, const std::string& prefix,
                 NamedParams& trained, std::vector<torch::Tensor>& baseValues) {
  const std::set<std::string> wanted(names.begin(), names.end());
  auto baseParams = base.named_parameters(true);
  torch::NoGradGuard ng;
  for (auto& p : copy.named_parameters(true)) {
    const torch::Tensor& b = baseParams[p.key()];
    if (wanted.count(p.key())) {
      p.value().set_data(b.detach().clone());
      p.value().set_requires_grad(true);
      trained.emplace_back(prefix + p.key(), p.value());
      baseValues.push_back(b);
    } else {
      p.value().set_data(b);
      p.value().set_requires_grad(false);
    }
  }
  auto baseBuffers = base.named_buffers(true);
  for (auto& buf : copy.named_buffers(true)) buf.value().set_data(baseBuffers[buf.key()]);
  for (auto& p : base.parameters()) p.set_requires_grad(false);
}

}  // namespace

TrainedModel::TrainedModel(SdModels& base, const std::map<std::string, std::vector<std::string>>& selected) : base_(base) {
  if (!base.unet_config) fail(codes::kInternal, "the UNet config was not kept");
  auto names = [&](const std::string& component) {
    auto it = selected.find(component);
    return it == selected.end() ? std::vector<std::string>{} : it->second;
  };
  // Built on the CPU and never moved: every tensor is replaced by the base's or a clone of it.
  unet_ = UNet2DConditionModel(*base.unet_config, base.motion_adapter_config ? &*base.motion_adapter_config : nullptr);
  unet_->eval();
  ShareExcept(*unet_, base.denoiser(), names("unet"), "unet.", params_, base_values_);
  const auto te = names("text_encoder");
  if (!te.empty()) {
    if (!base.text_encoder_config) fail(codes::kInternal, "the text encoder config was not kept");
    text_encoder_ = CLIPTextModel(*base.text_encoder_config);
    text_encoder_->eval();
    ShareExcept(*text_encoder_, base.textEncoder(), te, "text_encoder.", params_, base_values_);
  }
}

bool TrainedModel::trains(const std::string& qualifiedName) const {
  return std::any_of(params_.begin(), params_.end(), [&](const auto& p) { return p.first == qualifiedName; });
}

int64_t TrainedModel::trainedElements() const {
  int64_t n = 0;
  for (const auto* list : {&params_, &extras_})
    for (const auto& [_, p] : *list) n += p.numel();
  return n;
}

torch::Tensor TrainedModel::AddExtra(const std::string& name, const torch::Tensor& init) {
  const std::string key = "extra." + name;
  for (const auto& [k, _] : extras_)
    if (k == key) fail(codes::kInternal, "extra tensor " + key + " declared twice");
  torch::Tensor t = init.detach().to(base_.device, torch::kFloat32).clone().set_requires_grad(true);
  extras_.emplace_back(key, t);
  return t;
}

std::vector<std::pair<std::string, torch::Tensor>> TrainedModel::Delta() const {
  torch::NoGradGuard ng;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) out.emplace_back(params_[i].first, (params_[i].second - base_values_[i]).to(torch::kFloat32).cpu());
  for (const auto& [k, t] : extras_) out.emplace_back(k, t.detach().to(torch::kFloat32).cpu());
  return out;
}

}  // namespace lethe
