import type { Argv } from 'yargs';
import { erase, ESD_DEFAULTS, ESD_METHODS, type EsdMethod } from '../erase';
import type { ComputeDtype } from '../pipeline';
import { printJson } from './output';
import { interruptSignal, ProgressBar } from './progress';

export const command = 'erase';
export const describe = 'Erase a concept from a model (ESD); writes a delta file and a JSON report beside it';

export function builder(y: Argv) {
  return y
    .option('model', { type: 'string', default: 'default', describe: "diffusers folder, or 'default'" })
    .option('method', { type: 'string', choices: ESD_METHODS as unknown as string[], default: 'esd-x' })
    .option('concept', { type: 'string', demandOption: true, describe: 'concept to erase; several: comma-separated' })
    .option('out', { type: 'string', demandOption: true, describe: 'delta file (.safetensors)' })
    .option('eta', { type: 'number', default: ESD_DEFAULTS.eta, describe: 'negative guidance' })
    .option('iterations', { type: 'number', default: ESD_DEFAULTS.iterations })
    .option('lr', { type: 'number', default: ESD_DEFAULTS.lr })
    .option('start-guidance', { type: 'number', default: ESD_DEFAULTS.startGuidance })
    .option('ddim-steps', { type: 'number', default: ESD_DEFAULTS.ddimSteps })
    .option('seed', { type: 'number', default: ESD_DEFAULTS.seed })
    .option('sample-with', { type: 'string', choices: ['trained', 'frozen'], default: 'trained' })
    .option('erase-from', { type: 'string', describe: 'sample and train on this prompt (target built from the concept)' })
    .option('preserve', { type: 'string', array: true, describe: 'keep this prompt\'s predictions (repeatable; "" is the unconditional prompt); not in the reference' })
    .option('preserve-weight', { type: 'number', default: 1, describe: 'weight of the preservation term' })
    .option('projection-keep', { type: 'string', array: true, describe: 'a further prompt only the projection keeps (repeatable)' })
    .option('preserve-projection', { type: 'number', default: 0, describe: 'closed-form preservation: refit the key/value deltas to keep the token states of the --preserve and --projection-keep prompts (weight; 0: off); not in the reference' })
    .option('checkpoint-every', { type: 'number', default: 100, describe: 'iterations between checkpoints (0: none)' })
    .option('resume', { type: 'boolean', default: false, describe: 'continue from the checkpoint beside --out' })
    .option('device', { type: 'string', default: 'cpu' })
    .option('dtype', { type: 'string', default: 'float32', choices: ['float32', 'bfloat16', 'float16'] })
    .option('json', { type: 'boolean', default: false });
}

interface Args {
  model: string;
  method: string;
  concept: string;
  out: string;
  eta: number;
  iterations: number;
  lr: number;
  startGuidance: number;
  ddimSteps: number;
  seed: number;
  sampleWith: string;
  eraseFrom?: string;
  preserve?: string[];
  preserveWeight: number;
  preserveProjection: number;
  projectionKeep?: string[];
  checkpointEvery: number;
  resume: boolean;
  device: string;
  dtype: string;
  json: boolean;
}

export async function handler(argv: Args) {
  const interrupt = interruptSignal();
  const bar = new ProgressBar(argv.method, !argv.json && Boolean(process.stderr.isTTY));
  try {
    const r = await erase({
      model: argv.model,
      method: argv.method as EsdMethod,
      concept: argv.concept,
      out: argv.out,
      eta: argv.eta,
      iterations: argv.iterations,
      lr: argv.lr,
      startGuidance: argv.startGuidance,
      ddimSteps: argv.ddimSteps,
      seed: argv.seed,
      sampleWith: argv.sampleWith as 'trained' | 'frozen',
      eraseFrom: argv.eraseFrom,
      preserve: argv.preserve,
      preserveWeight: argv.preserveWeight,
      preserveProjection: argv.preserveProjection,
      projectionKeep: argv.projectionKeep,
      checkpointEvery: argv.checkpointEvery,
      resume: argv.resume,
      device: argv.device,
      dtype: argv.dtype as ComputeDtype,
      signal: interrupt.signal,
      onProgress: bar.update,
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
