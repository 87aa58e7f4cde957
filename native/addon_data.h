// Per-environment state (docs/architecture.md, "Native bridge"): each main thread, worker_thread or Electron context that
// loads the addon gets its own, so no JS reference is ever shared between environments.
#pragma once
#include <napi.h>

namespace lethe {

struct AddonData {
  Napi::FunctionReference cancelTokenClass;
  Napi::FunctionReference pipelineClass;
};

}  // namespace lethe
