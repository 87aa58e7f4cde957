'use strict';
// One full ESD-x erasure on the bundled model (the tiny fixture model when the bundled one is
// missing), Lethe next to the reference loop on PyTorch + diffusers (scripts/esd_reference.py):
// same model, concept, iterations, DDIM steps, learning rate, fp32 and threads, each in its own
// process. Reports wall time (whole run and training loop), the per-part breakdown, peak RSS,
// and whether the two runs drew the same samples (their loss curves agree).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..', '..');

module.exports = async function esd({ threads, pythonEnv, quick }) {
  const bundled = path.join(ROOT, 'models', 'shapes-64');
  const model = fs.existsSync(path.join(bundled, 'model_index.json')) ? bundled : path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
  const iterations = quick ? 10 : 200;
  const ddimSteps = 25;
  const lr = 1e-4;
  const concept = 'circle';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-esd-'));
  const run = (cmd, args, env) => {
    const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${path.basename(args[0])} failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop());
  };
  const ours = run(process.execPath, [path.join(__dirname, 'esd_run.js'), model, concept, 'esd-x', String(iterations), String(ddimSteps), String(lr), String(threads), path.join(tmp, 'ours.safetensors')], process.env);
  const ref = run('python3', [path.join(ROOT, 'scripts', 'esd_reference.py'), model, '--concept', concept, '--method', 'esd-x', '--iterations', String(iterations), '--ddim-steps', String(ddimSteps), '--lr', String(lr), '--threads', String(threads), '--out', path.join(tmp, 'ref.safetensors')], pythonEnv);
  fs.rmSync(tmp, { recursive: true, force: true });
  let maxRel = 0;
  ours.losses.forEach((l, i) => (maxRel = Math.max(maxRel, Math.abs(l - ref.losses[i]) / Math.max(1e-12, Math.abs(ref.losses[i])))));
  return {
    model: path.relative(ROOT, model),
    concept,
    method: 'esd-x',
    iterations,
    ddimSteps,
    threads,
    lethe: { wallSeconds: ours.wallSeconds, loopSeconds: ours.loopSeconds, breakdownSeconds: ours.breakdownSeconds, peakRssMiB: ours.peakRssMiB },
    reference: { wallSeconds: ref.wallSeconds, loopSeconds: ref.loopSeconds, breakdownSeconds: ref.breakdownSeconds, peakRssMiB: ref.peakRssMiB },
    speedup_wall: ref.wallSeconds / ours.wallSeconds,
    speedup_loop: ref.loopSeconds / ours.loopSeconds,
    same_samples_max_relative_loss_difference: maxRel,
  };
};
