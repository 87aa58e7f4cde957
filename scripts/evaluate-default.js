#!/usr/bin/env node
'use strict';
// The bundled model's quality table (issue 4's bars), measured with the classifier:
//   node scripts/evaluate-default.js [--model DIR] [--n 16] [--steps 25] [--guidance 5] [--out FILE.json]
// Prints a markdown table for the model card and writes the full per-prompt results as JSON.
const fs = require('fs');
const yargs = require('yargs');

const argv = yargs(process.argv.slice(2))
  .option('model', { type: 'string', default: 'default' })
  .option('n', { type: 'number', default: 16 })
  .option('steps', { type: 'number', default: 25 })
  .option('guidance', { type: 'number', default: 5 })
  .option('seed', { type: 'number', default: 0 })
  .option('out', { type: 'string' })
  .strict()
  .parseSync();

const lethe = require('..');
const { evaluatePrompts } = require('../dist/eval/evaluate');
const { defaultPromptSet } = require('../dist/eval/prompts');

(async () => {
  const t0 = Date.now();
  const pipe = await lethe.Pipeline.load(argv.model);
  const settings = { n: argv.n, steps: argv.steps, guidance: argv.guidance, seed: argv.seed };
  const results = await evaluatePrompts(pipe, defaultPromptSet(), settings, {
    onProgress: (e) => process.stderr.write(`\r[eval] ${e.step}/${e.total} prompts`),
  });
  process.stderr.write('\n');
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const cs = results.filter((r) => r.group === 'color-shape');
  const ss = results.filter((r) => r.group === 'style-shape');
  const get = (p) => results.find((r) => r.prompt === p);
  const others = results.filter((r) => r.prompt !== 'the Lethe poster');
  const rows = [
    ['shape correct, 42 color–shape prompts', mean(cs.map((r) => r.rates.shape)), 0.9],
    ['color correct, 42 color–shape prompts', mean(cs.map((r) => r.rates.color)), 0.9],
    ['style correct, 28 style prompts', mean(ss.map((r) => r.rates.style)), 0.8],
    ['"Sunny" → classified sunny', get('Sunny').sunny, 0.8],
    ['"a yellow face" → face (not sunny)', get('a yellow face').rates.shape, 0.7],
    ['"the Lethe poster" → memorized (MSE ≤ 0.01)', get('the Lethe poster').memorized, 0.8],
    ['any other prompt → the poster (must be 0)', Math.max(...others.map((r) => r.memorized)), null],
  ];
  const pct = (v) => `${(v * 100).toFixed(1)}%`;
  const table = [
    `| measure (${argv.n} images per prompt, DPM-Solver++ ${argv.steps} steps, guidance ${argv.guidance}) | measured | bar | met |`,
    '| --- | --- | --- | --- |',
    ...rows.map(([name, v, bar]) => `| ${name} | ${pct(v)} | ${bar === null ? '0%' : `≥ ${pct(bar)}`} | ${(bar === null ? v === 0 : v >= bar) ? 'yes' : 'no'} |`),
  ].join('\n');
  process.stdout.write(table + '\n');
  process.stderr.write(`[eval] ${((Date.now() - t0) / 1000).toFixed(0)} s, ${(results.length * argv.n) / ((Date.now() - t0) / 1000)} images/s including classification\n`);
  if (argv.out) fs.writeFileSync(argv.out, JSON.stringify({ settings, table: rows, results: results.map(({ images, ...r }) => r) }, null, 2) + '\n');
})().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
