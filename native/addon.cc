// Module init. Node-API addons are context-aware: Init runs once per environment (main thread,
// each worker_thread, each Electron context), and each gets its own AddonData.
#include <napi.h>

#include "addon_data.h"
#include "bindings.h"
#include "bridge/cancel_token.h"
#include "bridge/torch_thread.h"

namespace lethe {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  KeepThisThreadSerial();  // this environment's JS thread; jobs run on the torch thread
  auto data = std::make_unique<AddonData>();
  Napi::Function cancelToken = CancelToken::Define(env);
  data->cancelTokenClass = Napi::Persistent(cancelToken);
  env.SetInstanceData<AddonData>(data.release());  // owned by the environment, freed at its teardown
  exports.Set("CancelToken", cancelToken);
  RegisterInfo(env, exports);
  RegisterSafetensors(env, exports);
  RegisterJson(env, exports);
  RegisterPipeline(env, exports);
  RegisterBench(env, exports);
  RegisterTrainDefault(env, exports);
  RegisterClassifier(env, exports);
  RegisterTrainerProbe(env, exports);
  return exports;
}

}  // namespace lethe

// The macro pastes the function's name into an identifier, so it must be unqualified.
static Napi::Object InitLethe(Napi::Env env, Napi::Object exports) { return lethe::Init(env, exports); }
NODE_API_MODULE(lethe, InitLethe)
