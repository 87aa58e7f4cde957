// A cancel flag shared between a JS object (driven by an AbortSignal on the TS side) and native
// loops, which poll it every step (a running job cannot be interrupted from outside).
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>

namespace lethe {

using CancelFlag = std::shared_ptr<std::atomic<bool>>;

class CancelToken : public Napi::ObjectWrap<CancelToken> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CancelToken(const Napi::CallbackInfo& info);
  const CancelFlag& flag() const { return flag_; }

  // The flag of a token passed from JS, or a fresh never-set flag when `value` is undefined.
  static CancelFlag FromValue(Napi::Env env, Napi::Value value);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value IsCancelled(const Napi::CallbackInfo& info);
  CancelFlag flag_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace lethe
