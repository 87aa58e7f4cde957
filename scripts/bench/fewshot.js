'use strict';
// One few-shot text-encoder erasure on the bundled model (the tiny fixture model when the bundled
// one is missing) — circle, from 4 images the world renders, at the model's measured defaults —
// Lethe next to the reference loop on PyTorch + transformers + diffusers
// (scripts/fewshot_reference.py), each in its own process from the same image files, prompts,
// parameter set, epochs, batch, learning rate, fp32 and threads. Wall time is the whole erasure
// (model loading and image encoding included: the 15 s bar is on it), the loop is timed
// apart; peak RSS; and whether both trained on the same samples (their loss curves agree).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ROOT, benchModel, runJson, maxRelativeLossDifference } = require('./erasure_common');

module.exports = async function fewshot({ threads, pythonEnv, quick }) {
  const model = benchModel();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-bench-fewshot-'));
  try {
    const { renderDataset } = require(path.join(ROOT, 'dist', 'world', 'dataset'));
    const images = path.join(tmp, 'images');
    await renderDataset({ n: 4, seed: 0, outDir: images, shape: 'circle' });
    fs.rmSync(path.join(images, 'captions.jsonl'));
    const w = { method: 'fewshot-te', concept: 'circle', images, ...(quick ? { epochs: 2 } : {}) };
    const ours = runJson(process.execPath, [path.join(__dirname, 'erase_run.js'), JSON.stringify({ model, ...w, threads, out: path.join(tmp, 'ours.safetensors') })], process.env);
    const h = JSON.parse(fs.readFileSync(path.join(tmp, 'ours.report.json'), 'utf8'));
    const hp = h.hyperparameters;
    const refArgs = [path.join(ROOT, 'scripts', 'fewshot_reference.py'), model, '--images', images];
    for (const p of hp.trainPrompts) refArgs.push(`--prompt=${p}`);
    refArgs.push('--concept', w.concept, '--te-params', hp.teParams, '--epochs', String(hp.epochs), '--batch', String(hp.batch), '--lr', String(hp.lr), '--beta1', String(hp.beta1),
      '--beta2', String(hp.beta2), '--eps', String(hp.adamEps), '--weight-decay', String(hp.weightDecay), '--seed', String(hp.seed), '--threads', String(threads),
      '--out', path.join(tmp, 'ref.safetensors'));
    const ref = runJson('python3', refArgs, pythonEnv);
    const maxRel = maxRelativeLossDifference(ours.losses, ref.losses);
    const b = ours.breakdownSeconds;
    const oursLoop = b.forward + b.backward + b.optimizer;
    return {
      model: path.relative(ROOT, model),
      concept: w.concept,
      method: h.method,
      teParams: hp.teParams,
      images: 4,
      iterations: hp.iterations,
      epochs: hp.epochs,
      batch: hp.batch,
      threads,
      lethe: { wallSeconds: ours.wallSeconds, encodeSeconds: b.imageEncoding, loopSeconds: oursLoop, breakdownSeconds: b, peakRssMiB: ours.peakRssMiB },
      reference: { wallSeconds: ref.wallSeconds, encodeSeconds: ref.encodeSeconds, loopSeconds: ref.loopSeconds, breakdownSeconds: ref.breakdownSeconds, peakRssMiB: ref.peakRssMiB },
      speedup_wall: ref.wallSeconds / ours.wallSeconds,
      speedup_loop: ref.loopSeconds / oursLoop,
      same_samples_max_relative_loss_difference: maxRel,
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
};
