#!/usr/bin/env node
'use strict';
// `npm run train-default`: trains the bundled default model into models/shapes-64 (see
// src/train/default-model.ts). Deterministic per --seed; interrupted runs resume from --work.
const os = require('os');
const path = require('path');
const yargs = require('yargs');

const argv = yargs(process.argv.slice(2))
  .option('out', { type: 'string', default: path.join(__dirname, '..', 'models', 'shapes-64') })
  .option('work', { type: 'string', default: path.join(__dirname, '..', 'build', 'train-default') })
  .option('seed', { type: 'number', default: 1 })
  .option('images', { type: 'number', default: 30000 })
  .option('vae-steps', { type: 'number', default: 1800 })
  .option('vae-decoder-steps', { type: 'number', default: 1200 })
  .option('ldm-steps', { type: 'number', default: 3000 })
  .option('vae-batch', { type: 'number', default: 16 })
  .option('ldm-batch', { type: 'number', default: 32 })
  .option('threads', { type: 'number', default: os.cpus().length })
  .strict()
  .parseSync();

const { setThreads } = require('..');
const { trainDefaultModel } = require('../dist/train/default-model');
const { ProgressBar, interruptSignal } = require('../dist/cli/progress');

setThreads(argv.threads);
const interrupt = interruptSignal();
let bar = null;
let phase = '';
let lastLog = 0;
const started = Date.now();
trainDefaultModel({
  out: argv.out,
  work: argv.work,
  seed: argv.seed,
  images: argv.images,
  vaeSteps: argv.vaeSteps,
  vaeDecoderSteps: argv.vaeDecoderSteps,
  ldmSteps: argv.ldmSteps,
  vaeBatch: argv.vaeBatch,
  ldmBatch: argv.ldmBatch,
  signal: interrupt.signal,
  onProgress: (ev) => {
    if (ev.phase !== phase) {
      bar?.done();
      phase = ev.phase;
      bar = new ProgressBar(phase);
    }
    bar.update(ev);
    // Without a terminal, a line every 30 s so logs show progress.
    if (!process.stderr.isTTY && Date.now() - lastLog > 30000) {
      lastLog = Date.now();
      const loss = typeof ev.loss === 'number' ? ` loss ${ev.loss.toFixed(4)}` : '';
      process.stderr.write(`[train-default] ${ev.phase} ${ev.step}/${ev.total}${loss} (${((Date.now() - started) / 60000).toFixed(1)} min)\n`);
    }
  },
})
  .then(() => {
    bar?.done();
    process.stderr.write(`[train-default] done in ${((Date.now() - started) / 60000).toFixed(1)} min\n`);
  })
  .catch((e) => {
    bar?.done();
    process.stderr.write(`[train-default] ${e.message}\n${e.code === 'LETHE_CANCELLED' ? 'interrupted: run again to resume\n' : ''}`);
    process.exit(e.code === 'LETHE_CANCELLED' ? 130 : 1);
  })
  .finally(() => interrupt.dispose());
