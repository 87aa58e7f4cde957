'use strict';
// Full ESD erasures on the bundled model (the tiny fixture model when the bundled one is
// missing), Lethe next to the reference loop on PyTorch + diffusers (scripts/esd_reference.py):
// same model, concept, iterations, DDIM steps, learning rate, fp32 and threads, each in its own
// process. Reports wall time (whole run and training loop), the per-part breakdown, peak RSS,
// and whether the two runs drew the same samples (their loss curves agree).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ROOT, benchModel, runJson, maxRelativeLossDifference } = require('./erasure_common');

// Two workloads: plain ESD-x as the reference defines it, and the demo's configuration — the
// bundled model's measured defaults for its default method (models/shapes-64/lethe.json: method,
// learning rate, DDIM steps, the world's preservation lists and the projection), which Lethe
// resolves and the reference script is then given exactly (read back from Lethe's report).
function workloads(quick) {
  const iterations = quick ? 10 : 200;
  return {
    'esd-x': { concept: 'circle', method: 'esd-x', iterations, ddimSteps: 25, lr: 1e-4, preserve: [], preserveWeight: 0, preserveProjection: 0, projectionKeep: [], worldPrompts: false },
    'demo (the bundled model\'s defaults: esd-x-strict + preservation)': { concept: 'circle', iterations },
  };
}

module.exports = async function esd({ threads, pythonEnv, quick }) {
  const model = benchModel();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-esd-'));
  const results = {};
  try {
    for (const [name, w] of Object.entries(workloads(quick))) {
      const ours = runJson(process.execPath, [path.join(__dirname, 'erase_run.js'), JSON.stringify({ model, ...w, threads, out: path.join(tmp, 'ours.safetensors') })], process.env);
      // What Lethe ran, as its report records it: the reference runs the same.
      const h = JSON.parse(fs.readFileSync(path.join(tmp, 'ours.report.json'), 'utf8'));
      const hp = h.hyperparameters;
      Object.assign(w, { method: h.method, concept: hp.trainedOn.join(','), lr: hp.lr, ddimSteps: hp.ddimSteps, preserve: hp.preserve, preserveWeight: hp.preserveWeight, preserveProjection: hp.preserveProjection, projectionKeep: hp.projectionKeep });
      const refArgs = [path.join(ROOT, 'scripts', 'esd_reference.py'), model, '--concept', w.concept, '--method', w.method, '--iterations', String(w.iterations), '--ddim-steps', String(w.ddimSteps), '--lr', String(w.lr), '--eta', String(hp.eta), '--start-guidance', String(hp.startGuidance), '--threads', String(threads), '--out', path.join(tmp, 'ref.safetensors')];
      for (const p of w.preserve) refArgs.push(`--preserve=${p}`);
      if (w.preserve.length) refArgs.push('--preserve-weight', String(w.preserveWeight));
      for (const p of w.projectionKeep) refArgs.push(`--projection-keep=${p}`);
      if (w.preserveProjection) refArgs.push('--preserve-projection', String(w.preserveProjection));
      const ref = runJson('python3', refArgs, pythonEnv);
      const maxRel = maxRelativeLossDifference(ours.losses, ref.losses);
      results[name] = {
        model: path.relative(ROOT, model),
        concept: w.concept,
        method: w.method,
        preserve: w.preserve,
        preserveWeight: w.preserveWeight,
        preserveProjection: w.preserveProjection,
        projectionKeep: w.projectionKeep,
        iterations: w.iterations,
        ddimSteps: w.ddimSteps,
        threads,
        lethe: { wallSeconds: ours.wallSeconds, loopSeconds: ours.loopSeconds, breakdownSeconds: ours.breakdownSeconds, peakRssMiB: ours.peakRssMiB },
        reference: { wallSeconds: ref.wallSeconds, loopSeconds: ref.loopSeconds, breakdownSeconds: ref.breakdownSeconds, peakRssMiB: ref.peakRssMiB },
        speedup_wall: ref.wallSeconds / ours.wallSeconds,
        speedup_loop: ref.loopSeconds / ours.loopSeconds,
        same_samples_max_relative_loss_difference: maxRel,
      };
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return results;
};
