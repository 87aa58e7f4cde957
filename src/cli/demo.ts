import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Argv } from 'yargs';
import { erase, ESD_METHODS, type EsdMethod } from '../erase';
import { evaluateErasure, type GenerationSettings } from '../eval/evaluate';
import { conceptPromptSets } from '../eval/prompts';
import { erasureTable, writeErasureReport } from '../eval/report';
import { Pipeline } from '../pipeline';
import { printJson } from './output';
import { interruptSignal, ProgressBar } from './progress';

/** The demo's defaults on the bundled model, chosen by measurement (see the README's ESD table). */
export const DEMO_DEFAULTS = { concept: 'circle', method: 'esd-x-strict' as EsdMethod, iterations: 400, lr: 1e-3, ddimSteps: 25, eta: 1, startGuidance: 3, preserveWeight: 1, preserveProjection: 1, n: 8, steps: 20, guidance: 5 };

export const command = 'demo';
export const describe = 'The main job: erase a concept from the bundled model with ESD-x (strict: cross-attention to_k/to_v, keeping the other concepts), evaluate before and after, write ./lethe-demo/';

export function builder(y: Argv) {
  return y
    .option('concept', { type: 'string', default: DEMO_DEFAULTS.concept, describe: 'a shape, a style or Sunny' })
    .option('erase-text', { type: 'string', describe: 'the text ESD trains on (default: the concept as the captions phrase it, e.g. "a circle")' })
    .option('preserve', { type: 'string', array: true, describe: 'prompts whose predictions ESD keeps (default: "" and every other concept of the bundled model, and for the projection also the captions of the erased concept\'s siblings, never an evaluation prompt)' })
    .option('preserve-weight', { type: 'number', default: DEMO_DEFAULTS.preserveWeight, describe: 'weight of the preservation term (0: none)' })
    .option('preserve-projection', { type: 'number', default: DEMO_DEFAULTS.preserveProjection, describe: 'weight of the closed-form preservation of the key/value deltas (0: none; both 0: plain ESD)' })
    .option('method', { type: 'string', choices: ESD_METHODS as unknown as string[], default: DEMO_DEFAULTS.method })
    .option('iterations', { type: 'number', default: DEMO_DEFAULTS.iterations })
    .option('lr', { type: 'number', default: DEMO_DEFAULTS.lr })
    .option('n', { type: 'number', default: DEMO_DEFAULTS.n, describe: 'images per evaluation prompt' })
    .option('seed', { type: 'number', default: 0 })
    .option('out', { type: 'string', default: 'lethe-demo' })
    .option('json', { type: 'boolean', default: false });
}

interface Args {
  concept: string;
  eraseText?: string;
  preserve?: string[];
  preserveWeight: number;
  preserveProjection: number;
  method: string;
  iterations: number;
  lr: number;
  n: number;
  seed: number;
  out: string;
  json: boolean;
}

export async function handler(argv: Args) {
  const interrupt = interruptSignal();
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-demo-'));
  let bar = new ProgressBar(`erasing ${argv.concept}`, !argv.json && Boolean(process.stderr.isTTY));
  try {
    const { signal } = interrupt;
    const sets = conceptPromptSets(argv.concept);  // refuses unknown concepts before any work
    const eraseText = argv.eraseText ?? sets.eraseText;
    const keeps = argv.preserveWeight > 0 || argv.preserveProjection > 0;
    const preserve = keeps ? (argv.preserve ?? sets.preserve).filter((p) => p !== eraseText) : [];
    // --preserve replaces both lists; by default the projection also keeps the siblings' captions.
    const projectionKeep = keeps && !argv.preserve ? sets.preserveCaptions.filter((p) => p !== eraseText) : [];
    const base = await Pipeline.load('default', { signal });
    const delta = path.join(tmp, 'delta.safetensors');
    const er = await erase({
      model: 'default',
      pipeline: base,
      method: argv.method as EsdMethod,
      concept: eraseText,
      out: delta,
      iterations: argv.iterations,
      lr: argv.lr,
      ddimSteps: DEMO_DEFAULTS.ddimSteps,
      eta: DEMO_DEFAULTS.eta,
      startGuidance: DEMO_DEFAULTS.startGuidance,
      preserve,
      preserveWeight: argv.preserveWeight,
      preserveProjection: argv.preserveProjection,
      projectionKeep,
      seed: argv.seed,
      signal,
      onProgress: bar.update,
    });
    bar.done();
    bar = new ProgressBar('evaluating', !argv.json && Boolean(process.stderr.isTTY));
    const erased = await Pipeline.load('default', { signal, deltas: [delta] });
    const settings: GenerationSettings = { n: argv.n, steps: DEMO_DEFAULTS.steps, guidance: DEMO_DEFAULTS.guidance, seed: argv.seed };
    const ev = await evaluateErasure(base, erased, argv.concept, settings, { signal, onProgress: bar.update, keepImages: true });
    bar.done();
    const seconds = (Date.now() - started) / 1000;
    const meta = { demo: true, concept: argv.concept, eraseText, method: argv.method, erase: { iterations: argv.iterations, lr: argv.lr, preserve, preserveWeight: argv.preserveWeight, preserveProjection: argv.preserveProjection, projectionKeep, seconds: er.seconds, finalLoss: er.losses.at(-1) }, settings, wallSeconds: seconds };
    await writeErasureReport(argv.out, meta, ev);
    // The delta and its erase report go into the finished folder too.
    fs.copyFileSync(delta, path.join(argv.out, 'delta.safetensors'));
    fs.copyFileSync(er.report, path.join(argv.out, 'erase-report.json'));
    if (argv.json) printJson({ summary: ev.summary, report: path.join(argv.out, 'index.html'), seconds });
    else process.stdout.write(`${erasureTable(ev)}\n\nreport: ${path.join(argv.out, 'index.html')} (${seconds.toFixed(0)}s)\n`);
  } finally {
    bar.done();
    interrupt.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
