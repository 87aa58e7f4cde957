// The one native job every erasure method runs in (docs/architecture.md, "Erasure jobs").
#pragma once
#include <napi.h>

#include <memory>

#include "models/sd_models.h"

namespace lethe {

// Starts the erasure `options.method` on `models` (left unchanged: a copy is trained) and resolves
// to its summary after writing the delta file.
Napi::Promise LaunchErasure(Napi::Env env, std::shared_ptr<SdModels> models, Napi::Object options);

// Test-only: the text encoder's gradients of sum(states * weights) through a trained copy
// (erase/text_encoder_probe_js.cc).
Napi::Promise LaunchTextEncoderGradients(Napi::Env env, std::shared_ptr<SdModels> models, Napi::Object options);

// The registered native methods' ids, for TypeScript's check that each of its methods has one.
Napi::Value NativeErasureMethods(const Napi::CallbackInfo& info);

}  // namespace lethe
