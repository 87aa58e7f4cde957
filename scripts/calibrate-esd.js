#!/usr/bin/env node
'use strict';
// Measures ESD settings on the bundled model, the evidence behind its measured defaults
// (models/shapes-64/lethe.json; docs/esd.md):
//   node scripts/calibrate-esd.js --concept circle [--method esd-x-strict] [--lr 1e-3,5e-4]
//     [--iterations 200,400] [--preserve-weight 0,1] [--preserve-projection 0,1] [--seed 0] [--n 16] [--out FILE.json]
// Every option not given comes from the model's measured defaults (as `lethe erase` resolves them);
// comma-separated values make a grid. Each setting is erased from the same base (same seed) and
// evaluated with the classifier against the base's images (evaluated once; the sample cache keeps
// them across runs): efficacy, related and unrelated accuracy, misspellings.
const fs = require('fs');
const os = require('os');
const path = require('path');
const yargs = require('yargs');
const { list, num } = require('./calibrate_common');

const argv = yargs(process.argv.slice(2))
  .option('model', { type: 'string', default: 'default' })
  .option('concept', { type: 'string', default: 'circle', describe: 'a world concept (shape, style or Sunny)' })
  .option('method', { type: 'string', describe: "comma-separated (default: the model's own)" })
  .option('lr', { type: 'string' })
  .option('iterations', { type: 'string' })
  .option('eta', { type: 'string' })
  .option('preserve-weight', { type: 'string' })
  .option('preserve-projection', { type: 'string' })
  .option('world-prompts', { type: 'boolean', describe: "the world's preservation lists (default: the model's)" })
  .option('n', { type: 'number', default: 16, describe: 'images per evaluation prompt' })
  .option('seed', { type: 'number', default: 0, describe: 'training and evaluation seed' })
  .option('out', { type: 'string', describe: 'JSON with every row and per-prompt counts' })
  .strict()
  .parseSync();

const lethe = require('..');
const { evaluateErasure, generationSettings } = require('../dist/eval/evaluate');

const perPrompt = (groups) => Object.values(groups).flat().map((r) => ({ prompt: r.prompt, group: r.group, rates: r.rates, counts: r.counts, memorized: r.memorized, posterShapes: r.posterShapes }));
const pct = (v) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);

(async () => {
  const base = await lethe.Pipeline.load(argv.model);
  const settings = generationSettings(base, { n: argv.n, seed: argv.seed });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-calibrate-'));
  const rows = [];
  let baseResults;
  let basePrompts;
  process.stdout.write(
    `concept ${argv.concept}, ${argv.n} images per prompt, seed ${argv.seed}, ${settings.steps} steps guidance ${settings.guidance}\n` +
      '| method | lr | iterations | eta | preserve weight | projection | efficacy (base → erased) | related | unrelated | misspelled | poster copies | erase s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n',
  );
  try {
    for (const method of list(argv.method))
      for (const lr of list(argv.lr).map(num))
        for (const iterations of list(argv.iterations).map(num))
          for (const eta of list(argv.eta).map(num))
            for (const preserveWeight of list(argv.preserveWeight).map(num))
              for (const preserveProjection of list(argv.preserveProjection).map(num)) {
                const out = path.join(tmp, 'delta.safetensors');
                const er = await lethe.erase({ model: argv.model, pipeline: base, method, concept: argv.concept, out, lr, iterations, eta, preserveWeight, preserveProjection, worldPrompts: argv.worldPrompts, seed: argv.seed });
                const erased = await lethe.Pipeline.load(argv.model, { deltas: [out] });
                const ev = await evaluateErasure(base, erased, argv.concept, settings, { baseResults });
                baseResults = ev.base;
                basePrompts ??= perPrompt(ev.base);
                const s = ev.summary;
                const v = er.applied.values;
                const rows0 = { method: er.method, options: v, sources: er.applied.sources, summary: s, eraseSeconds: er.seconds, finalLoss: er.losses.at(-1), prompts: perPrompt(ev.erased) };
                rows.push(rows0);
                const rel = s.specificity.related;
                process.stdout.write(
                  `| ${er.method} | ${v.lr} | ${v.iterations} | ${v.eta} | ${v.preserveWeight} | ${v.preserveProjection} | ${pct(s.efficacy.base)} → ${pct(s.efficacy.erased)} | ${rel ? `${pct(rel.base)} → ${pct(rel.erased)}` : '—'} | ${pct(s.specificity.unrelated.base)} → ${pct(s.specificity.unrelated.erased)} | ${pct(s.robustness.base)} → ${pct(s.robustness.erased)} | ${pct(s.memorized.base)} → ${pct(s.memorized.erased)} | ${er.seconds.toFixed(0)} |\n`,
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
