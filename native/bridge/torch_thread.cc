#include "bridge/torch_thread.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

namespace lethe {

namespace {

std::atomic<int> requested_threads{0};  // 0: torch's default

struct Queue {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::function<void()>> tasks;
};

// The thread is detached and owns the queue with the callers, so process exit never waits on a
// running job (as with libuv's own pool).
std::shared_ptr<Queue> torchQueue() {
  static std::shared_ptr<Queue> queue = [] {
    auto q = std::make_shared<Queue>();
    std::thread([q] {
      int applied = -1;
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock<std::mutex> lock(q->mutex);
          q->ready.wait(lock, [&] { return !q->tasks.empty(); });
          task = std::move(q->tasks.front());
          q->tasks.pop_front();
        }
        const int want = requested_threads.load();
        if (want > 0 && want != applied) {
          at::set_num_threads(want);
          applied = want;
        }
        task();
      }
    }).detach();
    return q;
  }();
  return queue;
}

}  // namespace

void PostToTorchThread(std::function<void()> task) {
  auto q = torchQueue();
  {
    std::lock_guard<std::mutex> lock(q->mutex);
    q->tasks.push_back(std::move(task));
  }
  q->ready.notify_one();
}

void SetTorchThreads(int n) { requested_threads.store(n); }

int TorchThreads() {
  const int n = requested_threads.load();
  return n > 0 ? n : at::intraop_default_num_threads();
}

void KeepThisThreadSerial() {
  // libtorch sets each thread's OpenMP thread count lazily, on the thread's first parallel op or
  // thread-count query (at::internal::lazy_init_num_threads, to the process-wide count). Run that
  // now, or it would later undo the setting below: the JS thread's first large tensor op (e.g. the
  // NaN check of Concept Ablation's anchor latents) then made a second OpenMP team, libgomp counted
  // more threads than CPUs and stopped spinning, and every later job of the process ran its ops
  // with futex sleeps between them — about half speed on 2 cores (benchmarks, docs/architecture.md).
  (void)at::get_num_threads();
  // OpenMP's own per-thread setting, looked up at run time: at::set_num_threads would also change
  // the process-wide default the torch thread starts from. libtorch brings the OpenMP runtime.
  using SetNumThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetNumThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) set(1);
}

}  // namespace lethe
