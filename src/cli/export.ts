import type { Argv } from 'yargs';
import { exportModel } from '../erase/export';
import { printJson } from './output';

export const command = 'export';
export const describe = 'Write a diffusers model folder with delta files merged into its UNet';

export function builder(y: Argv) {
  return y
    .option('model', { type: 'string', default: 'default' })
    .option('delta', { type: 'string', array: true, demandOption: true, describe: 'delta file(s), added in order' })
    .option('out', { type: 'string', demandOption: true, describe: 'new diffusers folder (must not exist)' })
    .option('json', { type: 'boolean', default: false });
}

export async function handler(argv: { model: string; delta: string[]; out: string; json: boolean }) {
  const r = await exportModel(argv.model, argv.delta, argv.out);
  if (argv.json) printJson(r);
  else process.stdout.write(`wrote ${r.out} (${r.deltas.length} delta(s) merged)\n`);
}
