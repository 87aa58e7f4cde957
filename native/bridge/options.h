// Reading a job's options object: typed getters with clear errors, and the one entry point that
// turns `fn({ ... })` into a queued job and its promise.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "bridge/async_job.h"
#include "bridge/errors.h"
#include "bridge/tensor_convert.h"

namespace lethe {

inline std::string OptionString(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) fail(codes::kBadArgument, std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline std::string RequireString(const Napi::Object& o, const char* key) {
  std::string s = OptionString(o, key, "");
  if (s.empty()) fail(codes::kBadArgument, std::string(key) + " is required");
  return s;
}

inline double OptionNumber(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) fail(codes::kBadArgument, std::string(key) + " must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

inline torch::Tensor OptionTensor(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return {};
  return tensorFromJs(v, key);
}

inline torch::Tensor RequireTensor(const Napi::Object& o, const char* key) {
  torch::Tensor t = OptionTensor(o, key);
  if (!t.defined()) fail(codes::kBadArgument, std::string(key) + " is required");
  return t;
}

// fn(options) -> Promise, for a Job constructed as Job(env, options).
template <class Job>
Napi::Value StartJob(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(codes::kBadArgument, "expected an options object");
    return launch<Job>(env, info[0].As<Napi::Object>());
  });
}

}  // namespace lethe
