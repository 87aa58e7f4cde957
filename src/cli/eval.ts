import * as fs from 'fs';
import type { Argv } from 'yargs';
import { ErrorCodes, LetheError } from '../errors';
import { evaluateErasure, evaluatePrompts, generationSettings } from '../eval/evaluate';
import { defaultPromptSet, type EvalPrompt } from '../eval/prompts';
import { erasureTable, promptTable, writeErasureReport, writeModelReport } from '../eval/report';
import { Pipeline } from '../pipeline';
import { printJson } from './output';
import { interruptSignal, ProgressBar } from './progress';

export const command = 'eval';
export const describe = 'Generate and judge with the classifier: per-prompt attribute rates, or (with --concept) efficacy / specificity / robustness of an erasure';

export function builder(y: Argv) {
  return y
    .option('model', { type: 'string', default: 'default' })
    .option('delta', { type: 'string', array: true, describe: 'delta file(s): evaluate the erased model' })
    .option('concept', { type: 'string', describe: 'the erased concept: compare base and erased on target, related, unrelated and robustness prompts' })
    .option('anchor', { type: 'string', describe: 'with --concept, for a Concept Ablation erasure: also the rate at which target prompts show this anchor (the replacement took)' })
    .option('prompts', { type: 'string', describe: 'JSON file: [{ "prompt": ..., "expect": { "shape"?, "color"?, "style"?, "poster"? } }]' })
    .option('n', { type: 'number', default: 16, describe: 'images per prompt' })
    .option('steps', { type: 'number', describe: "default: the model's generation defaults (its lethe.json), else 50" })
    .option('guidance', { type: 'number', describe: "default: the model's generation defaults, else 7.5" })
    .option('seed', { type: 'number', default: 0 })
    .option('out', { type: 'string', describe: 'report folder (JSON, HTML, image grids)' })
    .option('json', { type: 'boolean', default: false });
}

interface Args {
  model: string;
  delta?: string[];
  concept?: string;
  anchor?: string;
  prompts?: string;
  n: number;
  steps?: number;
  guidance?: number;
  seed: number;
  out?: string;
  json: boolean;
}

function readPrompts(file: string): EvalPrompt[] {
  let list: unknown;
  try {
    list = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LetheError(ErrorCodes.BAD_ARGUMENT, `${file}: not a readable JSON prompt list (${(e as Error).message})`);
  }
  if (!Array.isArray(list) || list.length === 0) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `${file}: expected a non-empty JSON array of { prompt, expect }`);
  return list.map((p, i) => {
    if (typeof p?.prompt !== 'string') throw new LetheError(ErrorCodes.BAD_ARGUMENT, `${file}: entry ${i} has no prompt string`);
    return { prompt: p.prompt, expect: p.expect ?? {}, group: p.group ?? 'custom' };
  });
}

export async function handler(argv: Args) {
  const interrupt = interruptSignal();
  const bar = new ProgressBar('eval', !argv.json && Boolean(process.stderr.isTTY));
  try {
    const { signal } = interrupt;
    if (argv.anchor !== undefined && !argv.concept) throw new LetheError(ErrorCodes.BAD_ARGUMENT, '--anchor judges an erasure of --concept: give --concept and --delta too');
    if (argv.concept) {
      if (!argv.delta?.length) throw new LetheError(ErrorCodes.BAD_ARGUMENT, '--concept compares base and erased: give the erasure with --delta');
      const base = await Pipeline.load(argv.model, { signal });
      const settings = generationSettings(base, { n: argv.n, steps: argv.steps, guidance: argv.guidance, seed: argv.seed });
      const erased = await Pipeline.load(argv.model, { signal, deltas: argv.delta });
      const ev = await evaluateErasure(base, erased, argv.concept, settings, { signal, onProgress: bar.update, keepImages: Boolean(argv.out), anchor: argv.anchor });
      bar.done();
      if (argv.out) await writeErasureReport(argv.out, { model: base.dir, deltas: argv.delta, settings }, ev);
      if (argv.json) printJson({ summary: ev.summary, report: argv.out ?? null });
      else process.stdout.write(erasureTable(ev) + (argv.out ? `\nreport: ${argv.out}/index.html\n` : '\n'));
      return;
    }
    const pipe = await Pipeline.load(argv.model, { signal, deltas: argv.delta });
    const settings = generationSettings(pipe, { n: argv.n, steps: argv.steps, guidance: argv.guidance, seed: argv.seed });
    const prompts = argv.prompts ? readPrompts(argv.prompts) : defaultPromptSet();
    const results = await evaluatePrompts(pipe, prompts, settings, { signal, onProgress: bar.update, keepImages: Boolean(argv.out) });
    bar.done();
    if (argv.out) await writeModelReport(argv.out, { model: pipe.dir, deltas: argv.delta ?? [], settings }, results);
    if (argv.json) printJson({ settings, results: results.map(({ images: _i, ...r }) => r) });
    else process.stdout.write(promptTable(results) + '\n');
  } finally {
    bar.done();
    interrupt.dispose();
  }
}
