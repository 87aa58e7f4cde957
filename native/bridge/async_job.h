// Base of every long native job (DESIGN §4): runs off the JS thread, returns a promise, posts
// progress through a thread-safe function without blocking, and stops when its cancel flag is set.
#pragma once
#include <napi.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "bridge/cancel_token.h"
#include "bridge/errors.h"
#include "bridge/torch_thread.h"

namespace lethe {

struct Progress {
  std::string phase;
  int64_t step = 0;
  int64_t total = 0;
  std::map<std::string, double> values;  // e.g. loss, gflops
};

class AsyncJob : public Napi::AsyncWorker {
 public:
  // `options` may carry `onProgress` (function) and `cancel` (CancelToken).
  AsyncJob(Napi::Env env, const char* name, Napi::Object options)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {
    cancel_ = CancelToken::FromValue(env, options.Get("cancel"));
    Napi::Value cb = options.Get("onProgress");
    if (cb.IsFunction())
      progress_ = Napi::ThreadSafeFunction::New(env, cb.As<Napi::Function>(), std::string(name) + ":progress", 0, 1);
  }

  // A derived constructor that throws (bad arguments) must not leave the progress function
  // holding the event loop open.
  ~AsyncJob() override { ReleaseProgress(); }

  // Queue the job and hand its promise to JS. The worker deletes itself after OnOK/OnError.
  Napi::Promise Start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

  // Public so shared loops (train/trainer.h's TrainLoop) can poll the job they run in.
  bool Cancelled() const { return cancel_->load(); }
  void ThrowIfCancelled() const {
    if (Cancelled()) fail(codes::kCancelled, "the job was cancelled");
  }

 protected:
  virtual void Run() = 0;                            // the torch thread (bridge/torch_thread.h); throw on failure
  virtual Napi::Value Result(Napi::Env env) = 0;     // JS thread, after Run succeeded

  const CancelFlag& cancelFlag() const { return cancel_; }

  // Never blocks the native loop: when JS is busy, events queue; they are dropped only if the
  // queue cannot accept them.
  void Report(Progress p) {
    if (!progress_) return;
    auto boxed = std::make_unique<Progress>(std::move(p));
    napi_status s = progress_->NonBlockingCall(boxed.get(), [](Napi::Env env, Napi::Function fn, Progress* raw) {
      std::unique_ptr<Progress> data(raw);  // owned again here, freed on return
      if (env == nullptr || fn.IsEmpty()) return;
      Napi::Object ev = Napi::Object::New(env);
      ev.Set("phase", data->phase);
      ev.Set("step", Napi::Number::New(env, static_cast<double>(data->step)));
      ev.Set("total", Napi::Number::New(env, static_cast<double>(data->total)));
      for (const auto& [k, v] : data->values) ev.Set(k, Napi::Number::New(env, v));
      fn.Call({ev});
    });
    if (s == napi_ok) boxed.release();
  }

 private:
  void Execute() final {
    try {
      RunOnTorchThread([this] {
        ThrowIfCancelled();  // cancelled while queued behind another job
        Run();
      });
    } catch (...) {
      error_ = describe(std::current_exception());
      SetError(error_.message);
    }
  }
  void OnOK() final {
    ReleaseProgress();
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(toJsError(env, describe(std::current_exception())).Value());
    }
  }
  void OnError(const Napi::Error&) final {
    ReleaseProgress();
    deferred_.Reject(toJsError(Env(), error_).Value());
  }
  void ReleaseProgress() {
    if (progress_) {
      progress_->Release();
      progress_.reset();
    }
  }

  Napi::Promise::Deferred deferred_;
  CancelFlag cancel_;
  std::optional<Napi::ThreadSafeFunction> progress_;
  ErrorInfo error_;
};

// Node's AsyncWorker owns itself (it is deleted after OnOK/OnError), so this is the one place a
// job is allocated with new.
template <class Job, class... Args>
Napi::Promise launch(Args&&... args) {
  return (new Job(std::forward<Args>(args)...))->Start();
}

}  // namespace lethe
