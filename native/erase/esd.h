// ESD (Gandikota et al., ICCV 2023): negative-guidance fine-tuning of a UNet copy.
#pragma once
#include <napi.h>

#include <memory>

#include "models/sd_models.h"

namespace lethe {

// Starts an ESD erasure on `models` (left unchanged: a copy of the UNet is trained, sharing every
// untrained tensor) and resolves to its summary after writing the delta file.
Napi::Promise LaunchEsd(Napi::Env env, std::shared_ptr<SdModels> models, Napi::Object options);

}  // namespace lethe
