"""Reference for the matmul benchmark: PyTorch's own torch.matmul, same sizes, dtype and threads,
timed the same way as the addon's loop (warm-up, then as many products as fit in the budget)."""
import json
import sys
import time

import torch

size, seconds, dtype, threads = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
torch.set_num_threads(threads)
dt = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
with torch.no_grad():
    a, b = torch.randn(size, size, dtype=dt), torch.randn(size, size, dtype=dt)
    torch.mm(a, b)
    start, n = time.perf_counter(), 0
    while True:
        torch.mm(a, b)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
print(json.dumps({"dtype": dtype, "size": size, "iterations": n, "seconds": elapsed,
                  "gflops": 2.0 * size ** 3 * n / elapsed / 1e9, "threads": torch.get_num_threads(),
                  "torch": torch.__version__}))
