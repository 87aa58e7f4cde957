'use strict';
// One Concept Ablation erasure on the bundled model (the tiny fixture model when the bundled one
// is missing) — Sunny → "a yellow face" at the model's measured defaults — Lethe next to the
// reference loop on PyTorch + diffusers (scripts/ca_reference.py), each in its own process, same
// prompt pairs, anchor images, iterations, batch, learning rate, fp32 and threads. Anchor
// generation (Lethe's sampler vs diffusers' StableDiffusionPipeline, the same images: the sample
// cache is off for the run) and training are timed apart; peak RSS; and whether the two runs
// trained on the same samples (their loss curves agree).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ROOT, benchModel, runJson, maxRelativeLossDifference } = require('./erasure_common');

/**
 * One erasure of a method that trains on Concept Ablation's anchors (ca-model, doco) next to its
 * reference script; `referenceArgs(hp)` adds the method's own flags from the report's
 * hyperparameters, `referenceLosses(ref)` the reference's per-step loss (the sum of its terms).
 */
async function anchorMethodBench({ threads, pythonEnv, quick }, { method, script, referenceArgs = () => [], referenceLosses = (ref) => ref.losses }) {
  const model = benchModel();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `lethe-bench-${method}-`));
  const w = { method, concept: 'Sunny', anchor: 'a yellow face', ...(quick ? { iterations: 5, anchorImages: 10, ...(method === 'doco' ? { warmup: 1 } : {}) } : {}) };
  try {
    const ours = runJson(process.execPath, [path.join(__dirname, 'erase_run.js'), JSON.stringify({ model, ...w, threads, out: path.join(tmp, 'ours.safetensors') })], {
      ...process.env,
      LETHE_SAMPLE_CACHE: '0',
    });
    const h = JSON.parse(fs.readFileSync(path.join(tmp, 'ours.report.json'), 'utf8'));
    const hp = h.hyperparameters;
    const refArgs = [path.join(ROOT, 'scripts', script), model];
    for (const p of hp.targetPrompts) refArgs.push(`--target-prompt=${p}`);
    for (const p of hp.anchorPrompts) refArgs.push(`--anchor-prompt=${p}`);
    refArgs.push('--anchor-images', String(hp.anchorImages), '--anchor-steps', String(hp.anchorSteps), '--anchor-guidance', String(hp.anchorGuidance),
      '--params', hp.params, '--iterations', String(hp.iterations), '--lr', String(hp.lr), '--batch', String(hp.batch), '--prior-weight', String(hp.priorWeight),
      '--weight-decay', String(hp.weightDecay), '--clip-grad-norm', String(hp.clipGradNorm), '--seed', String(hp.seed), '--threads', String(threads), '--out', path.join(tmp, 'ref.safetensors'),
      ...referenceArgs(hp));
    if (hp.anchorScheduler !== 'dpmpp-2m' || !hp.detachStartToken) throw new Error('the reference script runs DPM-Solver++ anchors and the start-token detach only');
    const ref = runJson('python3', refArgs, pythonEnv);
    const maxRel = maxRelativeLossDifference(ours.losses, referenceLosses(ref));
    const b = ours.breakdownSeconds;
    const oursTraining = b.anchorPredictions + b.trainedForwardBackward + b.optimizer;
    return {
      model: path.relative(ROOT, model),
      concept: w.concept,
      anchor: w.anchor,
      method: h.method,
      params: hp.params,
      iterations: hp.iterations,
      batch: hp.batch,
      priorWeight: hp.priorWeight,
      anchorImages: hp.anchorImages,
      threads,
      lethe: { wallSeconds: ours.wallSeconds, anchorSeconds: b.anchorGeneration, trainingSeconds: oursTraining, breakdownSeconds: b, peakRssMiB: ours.peakRssMiB },
      reference: { wallSeconds: ref.wallSeconds, anchorSeconds: ref.anchorSeconds, trainingSeconds: ref.loopSeconds, breakdownSeconds: ref.breakdownSeconds, peakRssMiB: ref.peakRssMiB },
      speedup_wall: ref.wallSeconds / ours.wallSeconds,
      speedup_anchors: ref.anchorSeconds / b.anchorGeneration,
      speedup_training: ref.loopSeconds / oursTraining,
      same_samples_max_relative_loss_difference: maxRel,
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

module.exports = (opts) => anchorMethodBench(opts, { method: 'ca-model', script: 'ca_reference.py', referenceArgs: (hp) => ['--loss', hp.loss] });
module.exports.anchorMethodBench = anchorMethodBench;
