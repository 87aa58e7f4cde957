#!/usr/bin/env node
'use strict';
// Measures ESD settings on the bundled model, the evidence behind the documented defaults:
//   node scripts/calibrate-esd.js --concept circle [--method esd-x,esd-x-strict] [--lr 1e-3,2e-3]
//     [--iterations 200,400] [--eta 1] [--n 16] [--out FILE.json]
// Every combination is erased from the same base (same seed) and evaluated with the classifier
// against the base's images (evaluated once, same seeds): efficacy, related and unrelated
// accuracy, misspellings. Prints one row per setting and writes all of it as JSON.
const fs = require('fs');
const os = require('os');
const path = require('path');
const yargs = require('yargs');

const list = (v) => String(v).split(',').map((x) => x.trim()).filter(Boolean);
const argv = yargs(process.argv.slice(2))
  .option('model', { type: 'string', default: 'default' })
  .option('concept', { type: 'string', default: 'circle' })
  .option('train-text', { type: 'string', describe: 'the text ESD trains on (default: the concept)' })
  .option('method', { type: 'string', default: 'esd-x' })
  .option('lr', { type: 'string', default: '1e-3' })
  .option('iterations', { type: 'string', default: '200' })
  .option('eta', { type: 'string', default: '1' })
  .option('preserve', { type: 'string', array: true, describe: 'prompts whose predictions ESD keeps ("" = unconditional)' })
  .option('preserve-world', { type: 'boolean', default: false, describe: 'preserve what the demo preserves: "" and the other concepts of the bundled model' })
  .option('preserve-weight', { type: 'string', default: '1', describe: 'comma-separated list' })
  .option('preserve-projection', { type: 'string', default: '0', describe: 'closed-form preservation weights, comma-separated (0: off)' })
  .option('projection-keep', { type: 'string', array: true, describe: 'further prompts only the projection keeps (with --preserve-world: the demo\'s, the captions of the erased concept\'s siblings)' })
  .option('start-guidance', { type: 'number', default: 3 })
  .option('ddim-steps', { type: 'number', default: 25 })
  .option('n', { type: 'number', default: 16 })
  .option('steps', { type: 'number', default: 20 })
  .option('guidance', { type: 'number', default: 5 })
  .option('seed', { type: 'number', default: 0 })
  .option('out', { type: 'string' })
  .strict()
  .parseSync();

const lethe = require('..');
const { evaluateErasure } = require('../dist/eval/evaluate');
const { conceptPromptSets } = require('../dist/eval/prompts');
if (argv.preserveWorld) {
  const sets = conceptPromptSets(argv.concept);
  argv.preserve = sets.preserve.filter((p) => p !== (argv.trainText ?? argv.concept));
  argv.projectionKeep ??= sets.preserveCaptions;
}

// Per prompt of every group: its rates and classifier counts (images left out).
const perPrompt = (groups) => Object.values(groups).flat().map((r) => ({ prompt: r.prompt, group: r.group, rates: r.rates, counts: r.counts }));

(async () => {
  const base = await lethe.Pipeline.load(argv.model);
  const settings = { n: argv.n, steps: argv.steps, guidance: argv.guidance, seed: argv.seed };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-calibrate-'));
  const rows = [];
  let baseResults;
  let basePrompts;
  const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
  process.stdout.write(`concept ${argv.concept} (trained on "${argv.trainText ?? argv.concept}"), ${argv.n} images per prompt\n| method | lr | iterations | eta | preserve | projection | efficacy (base → erased) | related | unrelated | misspelled | erase s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n`);
  try {
    for (const method of list(argv.method))
      for (const lr of list(argv.lr).map(Number))
        for (const iterations of list(argv.iterations).map(Number))
          for (const eta of list(argv.eta).map(Number))
            for (const preserveWeight of argv.preserve ? list(argv.preserveWeight).map(Number) : [0])
            for (const preserveProjection of argv.preserve ? list(argv.preserveProjection).map(Number) : [0]) {
            const out = path.join(tmp, 'delta.safetensors');
            const er = await lethe.erase({ model: argv.model, pipeline: base, method, concept: argv.trainText ?? argv.concept, out, iterations, lr, eta, ddimSteps: argv.ddimSteps, startGuidance: argv.startGuidance, seed: argv.seed, preserve: preserveWeight || preserveProjection ? argv.preserve : undefined, preserveWeight, preserveProjection, projectionKeep: argv.projectionKeep });
            const erased = await lethe.Pipeline.load(argv.model, { deltas: [out] });
            const ev = await evaluateErasure(base, erased, argv.concept, settings, { baseResults });
            baseResults = ev.base;
            basePrompts ??= perPrompt(ev.base);
            const s = ev.summary;
            const row = { trainText: argv.trainText ?? argv.concept, method, lr, iterations, eta, preserve: preserveWeight || preserveProjection ? argv.preserve : [], preserveWeight, preserveProjection, projectionKeep: preserveProjection ? argv.projectionKeep ?? [] : [], summary: s, eraseSeconds: er.seconds, finalLoss: er.losses.at(-1), prompts: perPrompt(ev.erased) };
            rows.push(row);
            const rel = s.specificity.related;
            process.stdout.write(
              `| ${method} | ${lr} | ${iterations} | ${eta} | ${preserveWeight ? `${argv.preserve.map((p) => JSON.stringify(p)).join(' ')} ×${preserveWeight}` : '—'} | ${preserveProjection ? `${preserveProjection} (+${(argv.projectionKeep ?? []).length} prompts)` : '—'} | ${pct(s.efficacy.base)} → ${pct(s.efficacy.erased)} | ${rel ? `${pct(rel.base)} → ${pct(rel.erased)}` : '—'} | ${pct(s.specificity.unrelated.base)} → ${pct(s.specificity.unrelated.erased)} | ${pct(s.robustness.base)} → ${pct(s.robustness.erased)} | ${er.seconds.toFixed(0)} |\n`,
            );
            if (argv.out) fs.writeFileSync(argv.out, JSON.stringify({ concept: argv.concept, settings, base: basePrompts, rows }, null, 2) + '\n');
          }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
