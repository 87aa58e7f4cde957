#!/usr/bin/env node
'use strict';
// Measures few-shot text-encoder unlearning settings on the bundled model, the evidence behind
// its measured defaults (models/shapes-64/lethe.json; docs/fewshot.md):
//   node scripts/calibrate-fewshot.js --case circle|striped|sunny [--lr 1e-4,1e-3] [--epochs 5,20]
//     [--te-params mlp-final-attn] [--batch 2] [--images 4] [--seed 0,1,2] [--n 16] [--out FILE.jsonl]
// Each setting erases the concept from `--images` images the world renders of it (seed = the
// run's seed), then evaluates with the classifier against the base's images (cached across
// runs): efficacy, related, unrelated, robustness, and what the target prompts' images became.
const fs = require('fs');
const os = require('os');
const path = require('path');
const yargs = require('yargs');
const { list, num, pct, pair } = require('./calibrate_common');

const CASES = {
  circle: { concept: 'circle', world: { shape: 'circle' } },
  striped: { concept: 'striped', world: { style: 'striped' } },
  sunny: { concept: 'Sunny', world: { kind: 'sunny' } },
};
const argv = yargs(process.argv.slice(2))
  .option('case', { type: 'string', default: 'circle', choices: Object.keys(CASES) })
  .option('lr', { type: 'string' })
  .option('epochs', { type: 'string' })
  .option('te-params', { type: 'string' })
  .option('batch', { type: 'string' })
  .option('templates', { type: 'string', describe: 'a templates file ({} for the concept), instead of the world captions' })
  .option('images', { type: 'number', default: 4, describe: 'rendered images of the concept' })
  .option('seed', { type: 'string', default: '0', describe: 'training, rendering and evaluation seeds, comma-separated' })
  .option('n', { type: 'number', default: 16, describe: 'images per evaluation prompt' })
  .option('out', { type: 'string', describe: 'JSON lines, one per row' })
  .strict()
  .parseSync();

const lethe = require('..');
const { renderDataset } = require('../dist/world/dataset');
const { evaluateErasure, generationSettings } = require('../dist/eval/evaluate');
const shapes = (d) => (d ? Object.entries(d).filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${pct(v)}`).join(', ') : '—');

(async () => {
  const { concept, world } = CASES[argv.case];
  const base = await lethe.Pipeline.load('default');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-calibrate-fewshot-'));
  process.stdout.write(`${concept}${argv.templates ? ` (templates ${argv.templates})` : ''}, ${argv.images} rendered images, ${argv.n} images per prompt\n| te-params | lr | epochs | batch | seed | efficacy | related | unrelated | robustness | target prompts became (erased; styles for a style) | erase s |\n`);
  const baseBySeed = {};
  try {
    for (const seed of list(argv.seed).map(num)) {
      const images = path.join(tmp, `images-${seed}`);
      await renderDataset({ n: argv.images, seed, outDir: images, ...world });
      for (const teParams of list(argv.teParams))
        for (const lr of list(argv.lr).map(num))
          for (const epochs of list(argv.epochs).map(num))
            for (const batch of list(argv.batch).map(num)) {
              const out = path.join(tmp, 'delta.safetensors');
              const templates = argv.templates ? fs.readFileSync(argv.templates, 'utf8').split('\n').filter((l) => l.trim()) : undefined;
              const er = await lethe.erase({ model: 'default', pipeline: base, method: 'fewshot-te', concept, images, out, lr, epochs, batch, teParams, seed, templates });
              const erased = await lethe.Pipeline.load('default', { deltas: [out] });
              const settings = generationSettings(base, { n: argv.n, seed });
              const ev = await evaluateErasure(base, erased, concept, settings, { baseResults: baseBySeed[seed] });
              baseBySeed[seed] = ev.base;
              const s = ev.summary;
              const v = er.applied.values;
              process.stdout.write(
                `| ${v.teParams} | ${v.lr} | ${v.epochs} | ${v.batch} | ${seed} | ${pair(s.efficacy)} | ${pair(s.specificity.related)} | ${pair(s.specificity.unrelated)} | ${pair(s.robustness)} | ${shapes((s.drift.style ?? s.drift.shape).erased)} | ${er.seconds.toFixed(1)} |\n`,
              );
              const perPrompt = Object.fromEntries(
                Object.keys(ev.base).flatMap((g) => ev.base[g].map((r, i) => [`${g}: ${r.prompt}`, [r.rates.all, ev.erased[g][i].rates.all, ev.erased[g][i].counts.shape]])),
              );
              if (argv.out)
                fs.appendFileSync(argv.out, JSON.stringify({ case: argv.case, options: v, seed, summary: s, perPrompt, eraseSeconds: er.seconds, breakdown: er.breakdown, finalLoss: er.losses.at(-1) }) + '\n');
            }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
