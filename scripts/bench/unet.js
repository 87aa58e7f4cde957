'use strict';
// UNet forward and forward+backward per sample, Lethe (native) next to PyTorch + diffusers, same
// config, random weights, batch, latent size and threads, in the same run. FLOPs are counted once
// by torch's FlopCounterMode on the diffusers model (same architecture) and give achieved GFLOP/s,
// compared with the fp32 matmul ceiling measured through the addon.
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { writeConfigs } = require('./unet_configs');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

module.exports = async function unet({ lethe, threads, pythonEnv, quick }) {
  const native = require('node-gyp-build')(path.join(__dirname, '..', '..'));
  const configs = writeConfigs(path.join(os.tmpdir(), `lethe-bench-${process.pid}`));
  const ceiling = (await lethe.benchMatmul({ dtype: 'float32', size: 1024, seconds: quick ? 0.5 : 2 })).gflops;
  const out = { matmul_fp32_ceiling_gflops: ceiling, models: {} };
  for (const [name, c] of Object.entries(configs)) {
    const big = name.startsWith('sd15');
    const batch = 1;
    const iterations = quick ? 1 : big ? 3 : 20;
    const r = spawnSync('python3', [path.join(__dirname, 'unet_ref.py'), c.config, String(batch), String(c.latent), String(c.tokens), String(iterations), String(threads)], {
      env: pythonEnv,
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    if (r.status !== 0) throw new Error(`diffusers reference failed: ${r.stderr}`);
    const ref = JSON.parse(r.stdout.trim().split('\n').pop());
    const row = { config: name, batch, latent: `${c.latent}x${c.latent}`, parameters: ref.parameters };
    for (const mode of ['forward', 'forward_backward']) {
      const ours = await native.benchUnet({ config: c.config, batch, height: c.latent, width: c.latent, tokens: c.tokens, iterations, backward: mode !== 'forward' });
      if (ours.parameters !== ref.parameters) throw new Error(`${name}: parameter counts differ (${ours.parameters} vs ${ref.parameters}): not the same workload`);
      const flops = ref[`${mode}_flops`];
      const t = median(ours.seconds) / batch;
      const tr = median(ref[`${mode}_seconds`]) / batch;
      row[mode] = {
        lethe_seconds_per_sample: t,
        diffusers_seconds_per_sample: tr,
        speedup_vs_diffusers: tr / t,
        gflop_per_sample: flops / batch / 1e9,
        lethe_gflops: flops / batch / t / 1e9,
        diffusers_gflops: flops / batch / tr / 1e9,
        lethe_fraction_of_matmul_ceiling: flops / batch / t / 1e9 / ceiling,
      };
    }
    out.models[name] = row;
  }
  return out;
};
