#include "bridge/cancel_token.h"

#include "addon_data.h"
#include "bridge/errors.h"

namespace lethe {

Napi::Function CancelToken::Define(Napi::Env env) {
  return DefineClass(env, "CancelToken",
                     {InstanceMethod<&CancelToken::Cancel>("cancel"),
                      InstanceAccessor<&CancelToken::IsCancelled>("cancelled")});
}

CancelToken::CancelToken(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CancelToken>(info) {}

Napi::Value CancelToken::Cancel(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

Napi::Value CancelToken::IsCancelled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), flag_->load());
}

CancelFlag CancelToken::FromValue(Napi::Env env, Napi::Value value) {
  if (value.IsUndefined() || value.IsNull()) return std::make_shared<std::atomic<bool>>(false);
  auto* data = env.GetInstanceData<AddonData>();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(data->cancelTokenClass.Value()))
    fail(codes::kBadArgument, "expected a CancelToken for `cancel`");
  return CancelToken::Unwrap(value.As<Napi::Object>())->flag();
}

}  // namespace lethe
