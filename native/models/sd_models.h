// The modules of a Stable Diffusion folder, loaded once and shared (by shared_ptr) by every job
// that uses them, so a JS handle can be dropped while a job still runs.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/unet_2d_condition.h"

namespace lethe {

struct SdModels {
  std::string dir;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  CLIPTextModel text_encoder{nullptr};
  UNet2DConditionModel unet{nullptr};
  AutoencoderKL vae{nullptr};
  // To build copies (an erasure trains a copy that shares every untrained tensor).
  std::optional<Config> unet_config, text_encoder_config;
  // An AnimateDiff MotionAdapter folder joined to the UNet (empty: none), and its config.
  std::string motion_adapter_dir;
  std::optional<Config> motion_adapter_config;

  // components: any of "text_encoder", "unet", "vae". `onComponent` is called after each loads;
  // `cancelled` is polled between components. motion_adapter: a MotionAdapter folder (config.json
  // + safetensors) whose motion modules join the UNet (diffusers' UNetMotionModel.from_unet2d).
  static std::shared_ptr<SdModels> Load(const std::string& dir, const std::vector<std::string>& components, torch::Device device,
                                        torch::ScalarType dtype, const std::string& variant, const std::string& motion_adapter,
                                        const std::function<void(const std::string&, size_t, size_t)>& onComponent,
                                        const std::function<void()>& throwIfCancelled);

  CLIPTextModelImpl& textEncoder();
  UNet2DConditionModelImpl& denoiser();
  AutoencoderKLImpl& autoencoder();
};

}  // namespace lethe
