#!/usr/bin/env node
'use strict';
// Measures prompt-memory settings on the bundled model next to ESD-x at the same iterations, the
// evidence behind its measured defaults (models/shapes-64/lethe.json; docs/prompt-memory.md):
//   node scripts/calibrate-prompt-memory.js --concept circle [--method prompt-memory,esd-x]
//     [--lr 1e-3] [--iterations 200] [--transfer-iterations 0,200] [--prompt-lr 1e-2] [--prompt-tokens 10]
//     [--placement mid,all] [--erasure-trains-prompt true,false] [--params esd-x,esd-x-strict] [--preserve-weight 1] [--seed 0,1,2] [--n 16] [--without-memory] [--out FILE.jsonl]
//   node scripts/calibrate-prompt-memory.js --continual circle,striped …   (erase each on top of the last)
// Options not given come from the model's measured defaults (as `lethe erase` resolves them);
// comma-separated values make a grid (method options a method does not have are left out for it).
// Each row is evaluated with the classifier against the base's images; --without-memory also
// evaluates the delta's weights alone (what an export with --drop-prompt-memory holds).
const fs = require('fs');
const os = require('os');
const path = require('path');
const yargs = require('yargs');
const { list, num, pair } = require('./calibrate_common');

const argv = yargs(process.argv.slice(2))
  .option('concept', { type: 'string', default: 'circle', describe: 'a world concept (shape, style or Sunny)' })
  .option('continual', { type: 'string', describe: 'comma-separated concepts erased one after the other, each delta continuing the last' })
  .option('method', { type: 'string', default: 'prompt-memory' })
  .option('lr', { type: 'string' })
  .option('iterations', { type: 'string' })
  .option('transfer-iterations', { type: 'string' })
  .option('prompt-lr', { type: 'string' })
  .option('prompt-tokens', { type: 'string' })
  .option('erasure-trains-prompt', { type: 'string', describe: 'true,false' })
  .option('params', { type: 'string' })
  .option('placement', { type: 'string' })
  .option('preserve-weight', { type: 'string' })
  .option('seed', { type: 'string', default: '0' })
  .option('n', { type: 'number', default: 16, describe: 'images per evaluation prompt' })
  .option('without-memory', { type: 'boolean', default: false })
  .option('out', { type: 'string', describe: 'JSON lines, one per row' })
  .strict()
  .parseSync();

const lethe = require('..');
const { evaluateErasure, generationSettings } = require('../dist/eval/evaluate');

const PROMPT_MEMORY_ONLY = ['transferIterations', 'promptLr', 'promptTokens', 'placement', 'erasureTrainsPrompt'];
const bool = (v) => (v === undefined ? undefined : v === 'true');

(async () => {
  const base = await lethe.Pipeline.load('default');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-calibrate-pm-'));
  const baseBy = {};
  process.stdout.write(
    `${argv.n} images per prompt\n| concept | method | lr | it | transfer | prompt lr | tokens | placement | seed | memory | efficacy | related | unrelated | robustness | poster | erase s |\n|${' --- |'.repeat(16)}\n`,
  );
  const evaluate = async (concept, seed, deltas, dropPromptMemory) => {
    const erased = await lethe.Pipeline.load('default', { deltas, dropPromptMemory });
    const settings = generationSettings(base, { n: argv.n, seed });
    const key = `${concept}/${seed}`;
    const ev = await evaluateErasure(base, erased, concept, settings, { baseResults: baseBy[key] });
    baseBy[key] = ev.base;
    return ev;
  };
  const row = (concept, er, seed, memory, ev) => {
    const v = er.applied.values;
    const s = ev.summary;
    const pm = er.method === 'prompt-memory';
    process.stdout.write(
      `| ${concept} | ${er.method}${pm && v.erasureTrainsPrompt ? ' (erasure trains prompt)' : ''} ${v.params} | ${v.lr} | ${v.iterations} | ${pm ? v.transferIterations : '—'} | ${pm ? v.promptLr : '—'} | ${pm ? v.promptTokens : '—'} | ${pm ? v.placement : '—'} | ${seed} | ${memory} | ${pair(s.efficacy)} | ${pair(s.specificity.related)} | ${pair(s.specificity.unrelated)} | ${pair(s.robustness)} | ${pair(s.memorized)} | ${er.seconds.toFixed(0)} |\n`,
    );
    if (argv.out) fs.appendFileSync(argv.out, JSON.stringify({ concept, method: er.method, options: v, seed, memory, summary: s, eraseSeconds: er.seconds, finalLoss: er.losses.at(-1) }) + '\n');
  };
  try {
    let n = 0;
    for (const seed of list(argv.seed).map(num))
      for (const method of list(argv.method))
        for (const lr of list(argv.lr).map(num))
          for (const iterations of list(argv.iterations).map(num))
            for (const transferIterations of list(argv.transferIterations).map(num))
              for (const promptLr of list(argv.promptLr).map(num))
                for (const promptTokens of list(argv.promptTokens).map(num))
                  for (const placement of list(argv.placement))
                    for (const erasureTrainsPrompt of list(argv.erasureTrainsPrompt).map(bool))
                    for (const params of list(argv.params))
                    for (const preserveWeight of list(argv.preserveWeight).map(num)) {
                      let own = { transferIterations, promptLr, promptTokens, placement, erasureTrainsPrompt };
                      if (method !== 'prompt-memory') {
                        // ESD-x beside it: one row per setting of the options both have, with
                        // prompt-memory's loop settings (its measured defaults) where not given.
                        const first = (k) => (k === 'placement' ? list(argv[k])[0] : k === 'erasureTrainsPrompt' ? bool(list(argv[k])[0]) : num(list(argv[k])[0]));
                        if (PROMPT_MEMORY_ONLY.some((k) => own[k] !== first(k))) continue;
                        const d = base.defaults.erase.methods['prompt-memory'];
                        own = { ddimSteps: d.ddimSteps, eta: d.eta, startGuidance: d.startGuidance, worldPrompts: d.worldPrompts, preserveProjection: 0, lr: lr ?? d.lr, iterations: iterations ?? d.iterations, preserveWeight: preserveWeight ?? d.preserveWeight, params };
                      }
                      const concepts = argv.continual ? list(argv.continual) : [argv.concept];
                      let previous;
                      for (const concept of concepts) {
                        const out = path.join(tmp, `delta-${n++}.safetensors`);
                        const er = await lethe.erase({ model: 'default', pipeline: base, method, concept, out, lr, iterations, preserveWeight, seed, params, ...own, ...(previous && method === 'prompt-memory' ? { extend: previous } : {}) });
                        // A continual delta holds every erasure so far: each concept is judged on it.
                        for (const judged of concepts.slice(0, concepts.indexOf(concept) + 1)) {
                          row(judged, er, seed, 'with', await evaluate(judged, seed, [out], false));
                          if (argv.withoutMemory && method === 'prompt-memory') row(judged, er, seed, 'without', await evaluate(judged, seed, [out], true));
                        }
                        previous = out;
                      }
                    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
