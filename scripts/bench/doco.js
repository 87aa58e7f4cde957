'use strict';
// One DoCo erasure on the bundled model (the tiny fixture model when it is missing) — Sunny → "a
// yellow face" at the model's defaults — Lethe next to the reference loop on PyTorch + diffusers
// (scripts/doco_reference.py), each in its own process, same pairs, anchors, iterations, warm-up,
// learning rates, fp32 and threads; anchors and training timed apart, peak RSS, and whether both
// trained on the same samples (the per-step sum of the three loss terms agrees). The runner is
// Concept Ablation's (bench/ca.js): DoCo trains on the same anchors.
const { anchorMethodBench } = require('./ca');

module.exports = (opts) =>
  anchorMethodBench(opts, {
    method: 'doco',
    script: 'doco_reference.py',
    referenceArgs: (hp) => ['--d-lr', String(hp.dLr), '--warmup', String(hp.warmup), '--surgery-lambda', String(hp.surgeryLambda),
      '--discriminator-blocks', String(hp.discriminatorBlocks), ...(hp.surgery ? [] : ['--no-surgery'])],
    // Lethe's per-step loss is the sum of the terms a step has (the warm-up: the discriminator's alone).
    referenceLosses: (ref) => ref.terms.discriminator.map((d, i) => d + (ref.terms.adversarial[i] ?? 0) + (ref.terms.preservation[i] ?? 0)),
  });
