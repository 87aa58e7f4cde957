'use strict';
// One prompt-memory erasure on the bundled model (the tiny fixture model when it is missing) at
// its measured defaults, Lethe next to the reference loop on PyTorch + diffusers
// (scripts/prompt_memory_reference.py) given exactly what Lethe ran (read back from its report):
// same concept phrasing, kept prompts, iterations, transfer steps, learning rates, prompt size and
// layers, fp32 and threads, each in its own process. Wall time, loop time, breakdown, peak RSS and
// whether both drew the same samples (their loss curves agree).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ROOT, benchModel, runJson, maxRelativeLossDifference } = require('./erasure_common');

module.exports = async function promptMemory({ threads, pythonEnv, quick }) {
  const model = benchModel();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-pm-'));
  try {
    const iterations = quick ? 5 : 200;
    const w = { model, method: 'prompt-memory', concept: 'circle', iterations, transferIterations: iterations, threads, out: path.join(tmp, 'ours.safetensors') };
    const ours = runJson(process.execPath, [path.join(__dirname, 'erase_run.js'), JSON.stringify(w)], process.env);
    const h = JSON.parse(fs.readFileSync(path.join(tmp, 'ours.report.json'), 'utf8'));
    const hp = h.hyperparameters;
    const layers = JSON.parse(require('../..').readSafetensorsHeader(w.out).metadata.prompt_memory_layers);
    const args = [path.join(ROOT, 'scripts', 'prompt_memory_reference.py'), model, '--concept', hp.trainedOn.join(','), '--params', hp.params,
      '--iterations', String(hp.iterations - hp.transferIterations), '--transfer-iterations', String(hp.transferIterations), '--lr', String(hp.lr),
      '--prompt-lr', String(hp.promptLr), '--prompt-tokens', String(hp.promptTokens), '--placement', layers.join(','), '--eta', String(hp.eta),
      '--start-guidance', String(hp.startGuidance), '--ddim-steps', String(hp.ddimSteps), '--seed', String(hp.seed), '--threads', String(threads),
      '--out', path.join(tmp, 'ref.safetensors')];
    for (const p of hp.preserve) args.push(`--preserve=${p}`);
    if (hp.preserve.length) args.push('--preserve-weight', String(hp.preserveWeight));
    const ref = runJson('python3', args, pythonEnv);
    return {
      model: path.relative(ROOT, model),
      concept: w.concept,
      trainedOn: hp.trainedOn,
      preserve: hp.preserve.length,
      iterations: hp.iterations - hp.transferIterations,
      transferIterations: hp.transferIterations,
      promptTokens: hp.promptTokens,
      placement: hp.placement,
      ddimSteps: hp.ddimSteps,
      threads,
      lethe: { wallSeconds: ours.wallSeconds, loopSeconds: ours.loopSeconds, breakdownSeconds: ours.breakdownSeconds, peakRssMiB: ours.peakRssMiB },
      reference: { wallSeconds: ref.wallSeconds, loopSeconds: ref.loopSeconds, breakdownSeconds: ref.breakdownSeconds, peakRssMiB: ref.peakRssMiB },
      speedup_wall: ref.wallSeconds / ours.wallSeconds,
      speedup_loop: ref.loopSeconds / ours.loopSeconds,
      aim_speedup_wall: 1.5,
      same_samples_max_relative_loss_difference: maxRelativeLossDifference(ours.losses, ref.losses),
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
};
