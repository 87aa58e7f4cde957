#!/usr/bin/env node
'use strict';
// Measures Concept Ablation settings on the bundled model, the evidence behind its measured
// defaults (models/shapes-64/lethe.json; docs/ca.md):
//   node scripts/calibrate-ca.js --case instance|style|object|memorized [--method ca-model|ca-noise|doco]
//     [--lr 1e-3,3e-3] [--iterations 100,200] [--params xattn] [--prior-weight 0,1] [--preserve-projection 5,20]
//     [--projection-weighting tokens,text-padding] [--seed 0,1,2] [--n 16] [--out FILE.json]
// The cases are the issue's: Sunny → "a yellow face", striped → solid, circle → square, the Lethe
// poster → "a red triangle". Options not given come from the model's measured defaults (as `lethe
// erase` resolves them); comma-separated values make a grid. Each setting is erased and evaluated
// with the classifier against the base's images (cached across runs): efficacy, anchor rate, kept
// attributes, related, unrelated, robustness, poster copies, and efficacy over the trained and the
// held-out target/robustness prompts (generalization). DoCo trains on the same anchors (--method
// doco, with --d-lr / --warmup / --surgery-lambda grids).
const fs = require('fs');
const os = require('os');
const path = require('path');
const yargs = require('yargs');
const { list, num, pct, pair } = require('./calibrate_common');

const CASES = {
  instance: { concept: 'Sunny', anchor: 'a yellow face' },
  style: { concept: 'striped', anchor: 'solid' },
  object: { concept: 'circle', anchor: 'a square' },
  memorized: { concept: 'the Lethe poster', anchor: 'a red triangle' },
};
const argv = yargs(process.argv.slice(2))
  .option('case', { type: 'string', default: 'instance', choices: Object.keys(CASES) })
  .option('method', { type: 'string', default: 'ca-model' })
  .option('lr', { type: 'string' })
  .option('iterations', { type: 'string' })
  .option('params', { type: 'string' })
  .option('prior-weight', { type: 'string' })
  .option('anchor-images', { type: 'string' })
  .option('preserve-projection', { type: 'string', describe: "Lethe's closed-form preservation weight(s)" })
  .option('projection-weighting', { type: 'string', describe: 'how the refit weighs token states: tokens, text-padding (comma-separated: a grid)' })
  .option('target-prompts', { type: 'string', describe: "train on these target prompts only ('|'-separated; the anchor prompts follow by replacement): the others are held out" })
  .option('d-lr', { type: 'string', describe: "DoCo (--method doco): the discriminator's lr(s)" })
  .option('warmup', { type: 'string', describe: 'DoCo: warm-up step(s)' })
  .option('surgery-lambda', { type: 'string', describe: 'DoCo: gradient surgery lambda(s)' })
  .option('seed', { type: 'string', default: '0', describe: 'training and evaluation seeds, comma-separated' })
  .option('n', { type: 'number', default: 16, describe: 'images per evaluation prompt' })
  .option('out', { type: 'string', describe: 'JSON lines, one per row' })
  .strict()
  .parseSync();

const lethe = require('..');
const { evaluateErasure, generationSettings } = require('../dist/eval/evaluate');

(async () => {
  const { concept, anchor } = CASES[argv.case];
  const base = await lethe.Pipeline.load('default');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-calibrate-ca-'));
  process.stdout.write(`${concept} → ${anchor}, ${argv.n} images per prompt\n| method | params | lr | it | prior | projection | doco (dLr/warmup/λ) | seed | efficacy | anchor | kept | related | unrelated | robustness | poster | trained | held out | erase s |\n`);
  const baseBySeed = {};
  try {
    for (const seed of list(argv.seed).map(num))
      for (const params of list(argv.params))
        for (const lr of list(argv.lr).map(num))
          for (const iterations of list(argv.iterations).map(num))
            for (const priorWeight of list(argv.priorWeight).map(num))
              for (const anchorImages of list(argv.anchorImages).map(num))
                for (const preserveProjection of list(argv.preserveProjection).map(num))
                for (const projectionWeighting of list(argv.projectionWeighting))
                for (const dLr of list(argv.dLr).map(num))
                for (const warmup of list(argv.warmup).map(num))
                for (const surgeryLambda of list(argv.surgeryLambda).map(num)) {
                const doco = argv.method === 'doco' ? { dLr, warmup, surgeryLambda, preserveProjection, projectionWeighting } : { preserveProjection, projectionWeighting };
                const out = path.join(tmp, 'delta.safetensors');
                const er = await lethe.erase({ model: 'default', pipeline: base, method: argv.method, concept, anchor, out, lr, iterations, params, priorWeight, anchorImages, ...doco, seed,
                  ...(argv.targetPrompts ? { targetPrompts: argv.targetPrompts.split('|').map((p) => p.trim()) } : {}) });
                const erased = await lethe.Pipeline.load('default', { deltas: [out] });
                const settings = generationSettings(base, { n: argv.n, seed });
                const ev = await evaluateErasure(base, erased, concept, settings, { baseResults: baseBySeed[seed], anchor });
                baseBySeed[seed] = ev.base;
                const s = ev.summary;
                const v = er.applied.values;
                process.stdout.write(
                  `| ${er.method} | ${v.params} | ${v.lr} | ${v.iterations} | ${v.priorWeight} | ${v.preserveProjection ?? '-'}${v.preserveProjection ? ` (${v.projectionWeighting})` : ''} | ${er.method === 'doco' ? `${v.dLr}/${v.warmup}/${v.surgeryLambda}` : '-'} | ${seed} | ${pair(s.efficacy)} | ${pair(s.anchor.rate)} | ${pair(s.kept)} | ${pair(s.specificity.related)} | ${pair(s.specificity.unrelated)} | ${pair(s.robustness)} | ${pair(s.memorized)} | ${pair(s.generalization.trained)} | ${pair(s.generalization.heldOut)} | ${er.seconds.toFixed(0)} |\n`,
                );
                // Per prompt, base → erased: every expected attribute right (what the bars on named prompts read).
                const perPrompt = Object.fromEntries(
                  Object.keys(ev.base).flatMap((g) => ev.base[g].map((r, i) => [`${g}: ${r.prompt}`, [r.rates.all, ev.erased[g][i].rates.all, ev.erased[g][i].counts.shape]])),
                );
                const named = Object.entries(perPrompt)
                  .filter(([k]) => k.startsWith('related'))
                  .map(([k, [b, e]]) => `${k.slice(9)} ${pct(b)}→${pct(e)}`)
                  .join('; ');
                process.stdout.write(`|   related per prompt: ${named} |\n`);
                if (argv.out)
                  fs.appendFileSync(argv.out, JSON.stringify({ case: argv.case, method: er.method, options: v, seed, summary: s, perPrompt, eraseSeconds: er.seconds, breakdown: er.breakdown, finalLoss: er.losses.at(-1) }) + '\n');
                }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
