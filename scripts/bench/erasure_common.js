'use strict';
// What the erasure benchmarks (esd.js, ca.js, fewshot.js) share: the model they run on and how a measured
// process is run.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..', '..');

/** The bundled model, or the tiny fixture model when the bundled one is missing. */
function benchModel() {
  const bundled = path.join(ROOT, 'models', 'shapes-64');
  return fs.existsSync(path.join(bundled, 'model_index.json')) ? bundled : path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
}

/** Runs one measured process; its last stdout line is its JSON result. */
function runJson(cmd, args, env) {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${path.basename(args[0])} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** The largest relative difference between two loss curves step by step (do both runs train on the same samples?). */
function maxRelativeLossDifference(ours, ref) {
  let maxRel = 0;
  ours.forEach((l, i) => (maxRel = Math.max(maxRel, Math.abs(l - ref[i]) / Math.max(1e-12, Math.abs(ref[i])))));
  return maxRel;
}

module.exports = { ROOT, benchModel, runJson, maxRelativeLossDifference };
