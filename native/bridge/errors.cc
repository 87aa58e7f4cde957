#include "bridge/errors.h"

#include <c10/util/Exception.h>

#include <new>

namespace lethe {

ErrorInfo describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return {e.code(), e.what()};
  } catch (const c10::OutOfMemoryError& e) {
    return {codes::kOutOfMemory, e.what_without_backtrace()};
  } catch (const c10::Error& e) {
    // The backtrace is for torch developers; users get the first line of torch's message.
    std::string msg = e.what_without_backtrace();
    return {codes::kTorch, msg};
  } catch (const std::bad_alloc&) {
    return {codes::kOutOfMemory, "out of memory"};
  } catch (const std::exception& e) {
    return {codes::kInternal, e.what()};
  } catch (...) {
    return {codes::kInternal, "unknown native exception"};
  }
}

Napi::Error toJsError(Napi::Env env, const ErrorInfo& info) {
  Napi::Error err = Napi::Error::New(env, info.code + ": " + info.message);
  err.Set("code", Napi::String::New(env, info.code));
  err.Set("reason", Napi::String::New(env, info.message));
  return err;
}

}  // namespace lethe
