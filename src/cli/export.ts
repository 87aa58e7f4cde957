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
    .option('drop-prompt-memory', { type: 'boolean', default: false, describe: "export a prompt-memory delta's weights alone (the memory has no place in a diffusers folder)" })
    .option('json', { type: 'boolean', default: false });
}

export async function handler(argv: { model: string; delta: string[]; out: string; dropPromptMemory: boolean; json: boolean }) {
  const r = await exportModel(argv.model, argv.delta, argv.out, { dropPromptMemory: argv.dropPromptMemory });
  if (argv.json) printJson(r);
  else
    process.stdout.write(
      `wrote ${r.out} (${r.deltas.length} delta(s) merged${r.droppedPromptMemory.length ? `; prompt memory left out of ${r.droppedPromptMemory.join(', ')}` : ''})\n`,
    );
}
