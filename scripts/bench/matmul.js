'use strict';
// Matmul GFLOP/s through the addon next to PyTorch's torch.mm in Python, same run, same threads.
// The two alternate, several rounds each, and medians are reported: on a shared 2-core machine
// one round of either can be disturbed by anything else running.
const path = require('path');
const { spawnSync } = require('child_process');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

module.exports = async function matmul({ lethe, threads, pythonEnv, quick }) {
  const seconds = quick ? 0.3 : 1;
  const rounds = quick ? 1 : 3;
  const out = [];
  for (const dtype of ['float32', 'bfloat16']) {
    for (const size of quick ? [512] : [512, 1024, 2048]) {
      const ours = [];
      const ref = [];
      for (let k = 0; k < rounds; k++) {
        ours.push((await lethe.benchMatmul({ dtype, size, seconds })).gflops);
        const r = spawnSync('python3', [path.join(__dirname, 'matmul_ref.py'), String(size), String(seconds), dtype, String(threads)], {
          env: pythonEnv,
          encoding: 'utf8',
        });
        if (r.status !== 0) throw new Error(`python reference failed: ${r.stderr}`);
        ref.push(JSON.parse(r.stdout.trim().split('\n').pop()).gflops);
      }
      out.push({
        dtype,
        size,
        rounds,
        lethe_gflops: median(ours),
        pytorch_gflops: median(ref),
        ratio_vs_pytorch: median(ours) / median(ref),
        lethe_all: ours,
        pytorch_all: ref,
      });
    }
  }
  return out;
};
