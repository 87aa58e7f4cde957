'use strict';
// Text-to-image speed on the bundled model at its default settings (DPM-Solver++ 25 steps,
// guidance 5, 16 images of "a red circle" in one batch), Lethe next to diffusers in the same run.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..', '..');

module.exports = async function generate({ lethe, threads, pythonEnv, quick }) {
  const model = path.join(ROOT, 'models', 'shapes-64');
  if (!fs.existsSync(path.join(model, 'model_index.json'))) return { skipped: 'the bundled model is missing (npm run train-default)' };
  const n = quick ? 4 : 16;
  const steps = 25;
  const guidance = 5;
  const pipe = await lethe.Pipeline.load(model);
  await pipe.generate({ prompt: 'a red circle', n: 1, steps: 2, guidance }); // warm-up, as the reference
  const t0 = process.hrtime.bigint();
  await pipe.generate({ prompt: 'a red circle', n, steps, guidance, scheduler: 'dpmpp-2m', seed: 0 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const r = spawnSync('python3', [path.join(__dirname, 'generate_ref.py'), model, String(n), String(steps), String(guidance), String(threads)], { env: pythonEnv, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`diffusers reference failed: ${r.stderr}`);
  const ref = JSON.parse(r.stdout.trim().split('\n').pop());
  return { model: 'models/shapes-64', n, steps, guidance, lethe_images_per_second: n / seconds, diffusers_images_per_second: ref.images_per_second, speedup_vs_diffusers: ref.seconds / seconds };
};
