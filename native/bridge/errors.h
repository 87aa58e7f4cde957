// The one error boundary between native code and JS (docs/architecture.md, "Native bridge").
// Native code throws lethe::Error (with a stable code), c10::Error or std::exception;
// only the functions here turn them into JS errors carrying `code`.
#pragma once
#include <napi.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace lethe {

namespace codes {
inline constexpr const char* kBadCheckpoint = "LETHE_BAD_CHECKPOINT";
inline constexpr const char* kBadArgument = "LETHE_BAD_ARGUMENT";
inline constexpr const char* kShapeMismatch = "LETHE_SHAPE_MISMATCH";
inline constexpr const char* kCancelled = "LETHE_CANCELLED";
inline constexpr const char* kIo = "LETHE_IO";
inline constexpr const char* kDevice = "LETHE_DEVICE";
inline constexpr const char* kNonFinite = "LETHE_NON_FINITE";
inline constexpr const char* kOutOfMemory = "LETHE_OUT_OF_MEMORY";
inline constexpr const char* kTorch = "LETHE_TORCH_ERROR";
inline constexpr const char* kInternal = "LETHE_INTERNAL";
}  // namespace codes

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

[[noreturn]] inline void fail(const char* code, const std::string& message) { throw Error(code, message); }

// A caught exception reduced to plain data, so it can cross from a worker thread to the JS thread.
struct ErrorInfo {
  std::string code;
  std::string message;
};

ErrorInfo describe(std::exception_ptr error);
Napi::Error toJsError(Napi::Env env, const ErrorInfo& info);

// Runs `body` and rethrows any native exception as a JS error: the boundary for synchronous calls.
template <class Body>
Napi::Value guarded(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw toJsError(env, describe(std::current_exception()));
  }
}

}  // namespace lethe
