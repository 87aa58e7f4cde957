import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Argv } from 'yargs';
import { ErrorCodes, LetheError } from '../errors';
import { describeApplied, erase, methodIds } from '../erase';
import { evaluateErasure, generationSettings } from '../eval/evaluate';
import { conceptPromptSets } from '../eval/prompts';
import { erasureTable, writeErasureReport } from '../eval/report';
import { Pipeline } from '../pipeline';
import { printJson } from './output';
import { interruptSignal, ProgressBar } from './progress';

/** What the demo erases and how many images per prompt it judges; the erasure itself runs at the bundled model's measured defaults (models/shapes-64/lethe.json). */
export const DEMO = { concept: 'circle', n: 8 };
/** The Concept Ablation demo (--method ca-model / ca-noise): Sunny becomes a yellow face. */
export const CA_DEMO = { concept: 'Sunny', anchor: 'a yellow face' };

export const command = 'demo';
export const describe =
  "The main job: erase a concept from the bundled model at its measured defaults (ESD-x strict: cross-attention to_k/to_v, keeping the model's other concepts; --method ca-model: Concept Ablation, Sunny becomes a yellow face), evaluate before and after, write ./lethe-demo/";

export function builder(y: Argv) {
  return y
    .option('concept', { type: 'string', describe: `a shape, a style, Sunny or the Lethe poster (default: ${DEMO.concept}; with a ca-* method ${CA_DEMO.concept})` })
    .option('anchor', { type: 'string', describe: `Concept Ablation: what the concept becomes (default with a ca-* method: "${CA_DEMO.anchor}")` })
    .option('anchor-images', { type: 'number', describe: "Concept Ablation: anchor images the base model draws (default: the model's measured)" })
    .option('erase-text', { type: 'string', describe: 'the text ESD trains on (default: the concept as the captions phrase it, e.g. "a circle")' })
    .option('preserve', {
      type: 'string',
      array: true,
      describe: 'prompts whose predictions ESD keeps (default: "" and every other concept of the bundled model, and for the projection also the captions of the erased concept\'s siblings, never an evaluation prompt)',
    })
    .option('preserve-weight', { type: 'number', describe: "weight of the preservation term (0: none; default: the model's measured)" })
    .option('preserve-projection', { type: 'number', describe: "weight of the closed-form preservation of the key/value deltas (0: none; both 0: plain ESD; default: the model's measured)" })
    .option('method', { type: 'string', choices: methodIds(), describe: "default: the model's own (esd-x-strict)" })
    .option('iterations', { type: 'number', describe: "default: the model's measured" })
    .option('lr', { type: 'number', describe: "default: the model's measured" })
    .option('n', { type: 'number', default: DEMO.n, describe: 'images per evaluation prompt' })
    .option('seed', { type: 'number', default: 0 })
    .option('out', { type: 'string', default: 'lethe-demo' })
    .option('json', { type: 'boolean', default: false });
}

interface Args {
  concept?: string;
  anchor?: string;
  anchorImages?: number;
  eraseText?: string;
  preserve?: string[];
  preserveWeight?: number;
  preserveProjection?: number;
  method?: string;
  iterations?: number;
  lr?: number;
  n: number;
  seed: number;
  out: string;
  json: boolean;
}

export async function handler(argv: Args) {
  const interrupt = interruptSignal();
  const started = Date.now();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lethe-demo-'));
  const ablation = argv.method?.startsWith('ca-') ?? false;
  const concept = argv.concept ?? (ablation ? CA_DEMO.concept : DEMO.concept);
  const anchor = ablation ? (argv.anchor ?? (argv.concept === undefined ? CA_DEMO.anchor : undefined)) : undefined;
  let bar = new ProgressBar(`erasing ${concept}`, !argv.json && Boolean(process.stderr.isTTY));
  try {
    const { signal } = interrupt;
    if (argv.anchor !== undefined && !ablation) throw new LetheError(ErrorCodes.BAD_ARGUMENT, '--anchor is for Concept Ablation: give --method ca-model (or ca-noise)');
    if (ablation && anchor === undefined) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `Concept Ablation replaces ${concept} with an anchor: give --anchor`);
    if (argv.anchorImages !== undefined && !ablation) throw new LetheError(ErrorCodes.BAD_ARGUMENT, '--anchor-images is for Concept Ablation: give --method ca-model (or ca-noise)');
    if (ablation && (argv.eraseText || argv.preserve || argv.preserveWeight !== undefined || argv.preserveProjection !== undefined))
      throw new LetheError(ErrorCodes.BAD_ARGUMENT, '--erase-text and --preserve* are ESD options; Concept Ablation keeps what it keeps by its prior preservation');
    const sets = conceptPromptSets(concept);  // refuses unknown concepts before any work
    const base = await Pipeline.load('default', { signal });
    const delta = path.join(tmp, 'delta.safetensors');
    // The world's prompt lists come with the model's defaults (worldPrompts); --erase-text trains
    // on another text while keeping the lists of --concept.
    const lists = argv.eraseText
      ? { preserve: sets.preserve.filter((p) => p !== argv.eraseText), projectionKeep: argv.preserve ? undefined : sets.preserveCaptions.filter((p) => p !== argv.eraseText) }
      : {};
    const er = await erase({
      model: 'default',
      pipeline: base,
      method: argv.method,
      concept: argv.eraseText ?? concept,
      ...(anchor !== undefined ? { anchor, anchorImages: argv.anchorImages } : {}),
      ...(argv.eraseText ? { worldPrompts: false, ...lists } : {}),
      ...(argv.preserve ? { preserve: argv.preserve } : {}),
      out: delta,
      iterations: argv.iterations,
      lr: argv.lr,
      preserveWeight: argv.preserveWeight,
      preserveProjection: argv.preserveProjection,
      seed: argv.seed,
      signal,
      onProgress: bar.update,
      onApplied: (a) => argv.json || process.stderr.write(`${describeApplied(a)}\n`),
    });
    bar.done();
    bar = new ProgressBar('evaluating', !argv.json && Boolean(process.stderr.isTTY));
    const erased = await Pipeline.load('default', { signal, deltas: [delta] });
    const settings = generationSettings(base, { n: argv.n, seed: argv.seed });
    const ev = await evaluateErasure(base, erased, concept, settings, { signal, onProgress: bar.update, keepImages: true, anchor });
    bar.done();
    const seconds = (Date.now() - started) / 1000;
    const meta = { demo: true, concept, ...(anchor !== undefined ? { anchor } : {}), method: er.method, erase: { options: er.applied.values, sources: er.applied.sources, seconds: er.seconds, finalLoss: er.losses.at(-1) }, settings, wallSeconds: seconds };
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
