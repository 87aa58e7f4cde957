import * as fs from 'fs';
import type { Argv } from 'yargs';
import { describeApplied, erase, methodIds, PARAMETER_PRESETS, registeredMethods, type EraseOptions } from '../erase';
import { ErrorCodes, LetheError } from '../errors';
import type { ComputeDtype } from '../pipeline';
import { methodOptionKeys, withMethodFlags } from './method-options';
import { printJson } from './output';
import { interruptSignal, ProgressBar } from './progress';

export const command = 'erase';
export const describe = 'Erase a concept from a model; writes a delta file and a JSON report beside it';

export function builder(y: Argv) {
  return withMethodFlags(
    y
      .option('model', { type: 'string', default: 'default', describe: "diffusers folder, or 'default'" })
      .option('method', { type: 'string', choices: methodIds(), describe: "erasure method (default: the model's own, else esd-x)" })
      .option('concept', { type: 'string', demandOption: true, describe: 'concept to erase; several: comma-separated' })
      .option('out', { type: 'string', demandOption: true, describe: 'delta file (.safetensors)' })
      .option('iterations', { type: 'number', describe: "training iterations (default: the model's measured, else the method's reference)" })
      .option('lr', { type: 'number', describe: "learning rate (default: the model's measured, else the method's reference)" })
      .option('seed', { type: 'number', describe: 'random seed (default 0)' })
      .option('params', {
        type: 'string',
        describe: `what is trained: a preset (${Object.keys(PARAMETER_PRESETS).join(', ')}) or patterns component:glob, comma-separated (unet:*.attn2.to_k.*,text_encoder:*.mlp.*); default: the method's`,
      })
      .option('memory-tokens', { type: 'number', describe: 'learnable key/value memory tokens joined to the text in cross-attention, trained with the selected parameters (0: none)' })
      .option('memory-layers', { type: 'string', describe: 'which attn2 layers get them: all, in, mid, out, midout, inmid, or globs on layer names (default all)' })
      .option('checkpoint-every', { type: 'number', default: 100, describe: 'iterations between checkpoints (0: none)' })
      .option('resume', { type: 'boolean', default: false, describe: 'continue from the checkpoint beside --out (refused if it was written by another run)' })
      .option('device', { type: 'string', default: 'cpu' })
      .option('dtype', { type: 'string', default: 'float32', choices: ['float32', 'bfloat16', 'float16'] })
      .option('json', { type: 'boolean', default: false }),
  );
}

type Args = Record<string, unknown> & {
  model: string;
  method?: string;
  concept: string;
  out: string;
  checkpointEvery: number;
  resume: boolean;
  device: string;
  dtype: string;
  json: boolean;
};

/** The method options whose flags name prompt files. */
function promptFileKeys(): string[] {
  return [...new Set(registeredMethods().flatMap((m) => m.promptFileOptions ?? []))];
}

/** One prompt per non-empty line; a missing, unreadable or empty file is refused by name. */
export function readPromptFiles(files: string[], what: string): string[] {
  return files.flatMap((file) => {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new LetheError(ErrorCodes.BAD_ARGUMENT, `--${what.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
    if (lines.length === 0) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `${file}: no prompts in it (one per line)`);
    return lines;
  });
}

export async function handler(argv: Args) {
  const interrupt = interruptSignal();
  const bar = new ProgressBar(argv.method ?? 'erase', !argv.json && Boolean(process.stderr.isTTY));
  try {
    const methodOptions: Record<string, unknown> = {};
    for (const k of ['iterations', 'lr', 'seed', 'params', 'memoryTokens', 'memoryLayers', ...methodOptionKeys()]) if (argv[k] !== undefined) methodOptions[k] = argv[k];
    for (const k of promptFileKeys()) if (methodOptions[k] !== undefined) methodOptions[k] = readPromptFiles(methodOptions[k] as string[], k);
    const r = await erase({
      ...(methodOptions as Partial<EraseOptions>),
      model: argv.model,
      method: argv.method,
      concept: argv.concept,
      out: argv.out,
      checkpointEvery: argv.checkpointEvery,
      resume: argv.resume,
      device: argv.device,
      dtype: argv.dtype as ComputeDtype,
      signal: interrupt.signal,
      onProgress: bar.update,
      // Which defaults applied goes to stderr, so --json output stays one document.
      onApplied: (a) => process.stderr.write(`${describeApplied(a)}\n`),
    });
    bar.done();
    const summary = {
      delta: r.delta,
      report: r.report,
      method: r.method,
      concepts: r.concepts,
      iterations: r.losses.length,
      finalLoss: r.losses[r.losses.length - 1],
      trainedParameters: r.trainedParameters,
      seconds: r.seconds,
      breakdownSeconds: r.breakdown,
    };
    if (argv.json) printJson(summary);
    else
      process.stdout.write(
        `erased ${r.concepts.join(', ')} with ${r.method} in ${r.seconds.toFixed(1)}s (${r.losses.length} iterations, final loss ${summary.finalLoss.toExponential(3)})\n` +
          `delta: ${r.delta}\nreport: ${r.report}\n`,
      );
  } finally {
    bar.done();
    interrupt.dispose();
  }
}
