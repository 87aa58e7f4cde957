#include "models/sd_models.h"

#include <algorithm>

#include "bridge/errors.h"
#include "models/weights.h"

namespace lethe {

std::shared_ptr<SdModels> SdModels::Load(const std::string& dir, const std::vector<std::string>& components, torch::Device device,
                                         torch::ScalarType dtype, const std::string& variant, const std::string& motion_adapter,
                                         const std::function<void(const std::string&, size_t, size_t)>& onComponent,
                                         const std::function<void()>& throwIfCancelled) {
  auto m = std::make_shared<SdModels>();
  m->dir = dir;
  m->device = device;
  m->dtype = dtype;
  if (!motion_adapter.empty()) {
    if (std::find(components.begin(), components.end(), "unet") == components.end()) fail(codes::kBadArgument, "a motion adapter needs the unet component");
    m->motion_adapter_dir = motion_adapter;
    m->motion_adapter_config = Config::FromFile(motion_adapter + "/config.json");
  }
  size_t done = 0;
  for (const auto& name : components) {
    throwIfCancelled();
    const std::string sub = dir + "/" + name;
    Config config = Config::FromFile(sub + "/config.json");
    WeightFiles files = OpenComponentWeights(sub, variant);
    std::shared_ptr<torch::nn::Module> module;
    if (name == "text_encoder") {
      m->text_encoder = CLIPTextModel(config);
      m->text_encoder_config = config;
      module = m->text_encoder.ptr();
    } else if (name == "unet") {
      m->unet = UNet2DConditionModel(config, m->motion_adapter_config ? &*m->motion_adapter_config : nullptr);
      m->unet_config = config;
      module = m->unet.ptr();
      if (m->motion_adapter_config) {
        // The adapter's keys are the motion UNet's own (down_blocks.i.motion_modules.j...), so the two
        // weight sets load as one: every parameter from exactly one of them, nothing left over.
        WeightFiles adapter = OpenComponentWeights(motion_adapter);
        for (auto& f : adapter) files.push_back(std::move(f));
      }
    } else if (name == "vae") {
      m->vae = AutoencoderKL(config);
      module = m->vae.ptr();
    } else {
      fail(codes::kBadArgument, "unknown component '" + name + "' (text_encoder, unet, vae)");
    }
    LoadWeights(*module, files, name == "unet" && m->motion_adapter_config ? sub + " + " + motion_adapter : sub);
    module->to(device, dtype);
    module->eval();
    onComponent(name, ++done, components.size());
  }
  return m;
}

CLIPTextModelImpl& SdModels::textEncoder() {
  if (!text_encoder) fail(codes::kBadArgument, "this pipeline was loaded without its text_encoder");
  return *text_encoder;
}

UNet2DConditionModelImpl& SdModels::denoiser() {
  if (!unet) fail(codes::kBadArgument, "this pipeline was loaded without its unet");
  return *unet;
}

AutoencoderKLImpl& SdModels::autoencoder() {
  if (!vae) fail(codes::kBadArgument, "this pipeline was loaded without its vae");
  return *vae;
}

}  // namespace lethe
