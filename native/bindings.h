// Each binding file registers its functions on the module's exports.
#pragma once
#include <napi.h>

namespace lethe {
void RegisterInfo(Napi::Env env, Napi::Object exports);
void RegisterSafetensors(Napi::Env env, Napi::Object exports);
void RegisterJson(Napi::Env env, Napi::Object exports);
void RegisterPipeline(Napi::Env env, Napi::Object exports);
void RegisterBench(Napi::Env env, Napi::Object exports);
void RegisterTrainDefault(Napi::Env env, Napi::Object exports);
void RegisterClassifier(Napi::Env env, Napi::Object exports);
void RegisterTrainerProbe(Napi::Env env, Napi::Object exports);
}  // namespace lethe
