// Base of every long native job (docs/architecture.md, "Jobs"): runs on the torch thread, returns a
// promise, posts progress through a thread-safe function without blocking, and stops when its
// cancel flag is set.
//
// Why not Napi::AsyncWorker: a worker runs on libuv's pool (4 threads by default). Every job
// waits its turn for the one torch thread, so a worker would block a pool thread for as long as
// the job waits and runs; four queued jobs (a sweep, an app with a few requests) starved the pool,
// and fs, zlib, dns and sharp calls of the same process stalled behind them. Here the job is posted
// straight to the torch thread and settles its promise through a thread-safe function: no libuv
// thread is held at any time.
#pragma once
#include <napi.h>

#include <map>
#include <mutex>
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

class AsyncJob {
 public:
  // `options` may carry `onProgress` (function) and `cancel` (CancelToken).
  AsyncJob(Napi::Env env, const char* name, Napi::Object options)
      : name_(name), deferred_(Napi::Promise::Deferred::New(env)), link_(std::make_shared<JsLink>()) {
    cancel_ = CancelToken::FromValue(env, options.Get("cancel"));
    Napi::Value cb = options.Get("onProgress");
    if (cb.IsFunction()) {
      auto link = link_;
      progress_ = ProgressFn::New(env, cb.As<Napi::Function>(), name_ + ":progress", 0, 1, static_cast<void*>(nullptr),
                                  [link](Napi::Env, void*, void*) { link->Close(&JsLink::progress); }, static_cast<void*>(nullptr));
      link_->progress = true;
    }
  }
  AsyncJob(const AsyncJob&) = delete;
  AsyncJob& operator=(const AsyncJob&) = delete;

  // A derived constructor that throws (bad arguments) must not leave the progress function
  // holding the event loop open.
  virtual ~AsyncJob() { ReleaseProgress(); }

  // Queue the job on the torch thread and hand its promise to JS. From here the job owns itself:
  // it is deleted on the JS thread once its promise has settled, or, if its JS environment was
  // torn down meanwhile (a worker_thread terminated), as soon as it stops.
  static Napi::Promise Start(std::unique_ptr<AsyncJob> job, Napi::Env env) {
    Napi::Promise promise = job->deferred_.Promise();
    // The settle function holds the event loop open while the job is pending, as a pending
    // AsyncWorker did. Its finaliser runs at the latest when the environment goes away: the job
    // is then cancelled, so it stops within a step instead of running for nobody.
    CancelFlag cancel = job->cancel_;
    auto link = job->link_;
    job->settle_ = SettleFn::New(env, job->name_ + ":settle", 0, 1, static_cast<void*>(nullptr),
                                 [cancel, link](Napi::Env, void*, void*) {
                                   cancel->store(true);
                                   link->Close(&JsLink::settle);
                                 },
                                 static_cast<void*>(nullptr));
    job->link_->settle = true;
    AsyncJob* raw = job.release();
    PostToTorchThread([raw] { raw->Execute(); });
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
    std::lock_guard<std::mutex> lock(link_->mutex);
    if (!link_->progress) return;
    auto boxed = std::make_unique<Progress>(std::move(p));
    if (progress_->NonBlockingCall(boxed.get()) == napi_ok) boxed.release();
  }

 private:
  // The thread-safe functions the torch thread still calls. Node frees a thread-safe function when
  // its environment is torn down, whoever still holds it; its finaliser marks it closed here, under
  // the mutex every call takes, so no call ever reaches a freed one. No call waits for JS while
  // holding the mutex (the queues are unbounded).
  struct JsLink {
    std::mutex mutex;
    bool progress = false, settle = false;
    void Close(bool JsLink::*which) {
      std::lock_guard<std::mutex> lock(mutex);
      this->*which = false;
    }
  };

  static void CallProgress(Napi::Env env, Napi::Function fn, void*, Progress* raw) {
    std::unique_ptr<Progress> data(raw);  // owned again here, freed on return (also at teardown)
    if (env == nullptr || fn.IsEmpty()) return;
    try {
      Napi::Object ev = Napi::Object::New(env);
      ev.Set("phase", data->phase);
      ev.Set("step", Napi::Number::New(env, static_cast<double>(data->step)));
      ev.Set("total", Napi::Number::New(env, static_cast<double>(data->total)));
      for (const auto& [k, v] : data->values) ev.Set(k, Napi::Number::New(env, v));
      fn.Call({ev});
    } catch (...) {
      // An environment that is shutting down can no longer run JS; nothing is owed to it.
    }
  }
  // JS thread, or (env null) the environment's teardown: the job is freed either way.
  static void CallSettle(Napi::Env env, Napi::Function, void*, AsyncJob* job) {
    std::unique_ptr<AsyncJob> owned(job);
    if (env != nullptr) owned->Settle(env);
  }
  using ProgressFn = Napi::TypedThreadSafeFunction<void, Progress, &AsyncJob::CallProgress>;
  using SettleFn = Napi::TypedThreadSafeFunction<void, AsyncJob, &AsyncJob::CallSettle>;

  // Torch thread.
  void Execute() {
    try {
      ThrowIfCancelled();  // cancelled while queued behind another job
      Run();
    } catch (...) {
      error_ = describe(std::current_exception());
    }
    std::shared_ptr<JsLink> link = link_;  // the job may be gone once the call is queued
    SettleFn settle = *settle_;
    bool queued = false;
    {
      std::lock_guard<std::mutex> lock(link->mutex);
      if (link->settle) {
        queued = settle.BlockingCall(this) == napi_ok;
        settle.Release();
        link->settle = false;  // released: this thread never touches it again
      }
    }
    // The environment is gone and will never run the callback: the job ends here.
    if (!queued) delete this;
  }

  // JS thread.
  void Settle(Napi::Env env) {
    ReleaseProgress();
    try {
      Napi::HandleScope scope(env);
      if (error_) {
        deferred_.Reject(toJsError(env, *error_).Value());
        return;
      }
      try {
        deferred_.Resolve(Result(env));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      } catch (...) {
        deferred_.Reject(toJsError(env, describe(std::current_exception())).Value());
      }
    } catch (...) {
      // The environment is shutting down (a terminated worker): its promise can no longer settle.
    }
  }

  void ReleaseProgress() {
    std::lock_guard<std::mutex> lock(link_->mutex);
    if (link_->progress) progress_->Release();
    link_->progress = false;
  }

  std::string name_;
  Napi::Promise::Deferred deferred_;
  CancelFlag cancel_;
  std::shared_ptr<JsLink> link_;
  std::optional<ProgressFn> progress_;
  std::optional<SettleFn> settle_;
  std::optional<ErrorInfo> error_;
};

// The one place a job is allocated: it owns itself from Start() on.
template <class Job, class... Args>
Napi::Promise launch(Napi::Env env, Args&&... args) {
  return AsyncJob::Start(std::make_unique<Job>(env, std::forward<Args>(args)...), env);
}

}  // namespace lethe
