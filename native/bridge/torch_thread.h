// Every job's torch work runs on one process-wide thread, one job after another.
//
// Why: libgomp gives each thread that opens a parallel region its own team of workers. Jobs run by
// libuv's pool land on different threads, so after a few jobs there are several teams; once they
// outnumber the cores libgomp throttles its spin-wait and every small op pays a futex wake-up.
// Measured on the bundled model's UNet (batch 2, 16×16, 2 cores): 16 ms per forward in the first
// job of a process, 29 ms in every later one; on one thread, 16 ms throughout. Queuing jobs also
// stops two of them from fighting over the same cores.
#pragma once
#include <functional>

namespace lethe {

// Queues `task` on the torch thread and returns at once; tasks run one after another in the
// order they were posted. `task` must not throw (AsyncJob catches and settles its promise).
void PostToTorchThread(std::function<void()> task);

// The intra-op thread count the torch thread uses from its next job on (lethe.setThreads).
void SetTorchThreads(int n);
int TorchThreads();

// For JS threads (main, worker_threads, Electron contexts): the small torch work they still do
// (copying tensors in and out) runs serially, so no second OpenMP team is ever made there.
void KeepThisThreadSerial();

}  // namespace lethe
