import type { Argv } from 'yargs';
import { clearSamples, listSamples, samplesDir } from '../cache/samples';
import { formatBytes, printJson } from './output';

export const command = 'cache <action>';
export const describe = 'The per-user sample cache (generated images, anchors, trajectories shared by runs): ls or clear';

interface Args {
  action?: string;
  kind?: string;
  json: boolean;
}

export function builder(y: Argv) {
  return y
    .positional('action', { type: 'string', choices: ['ls', 'clear'], describe: 'ls: list entries; clear: remove them' })
    .option('kind', { type: 'string', describe: 'only entries of this kind (generation, anchors, …)' })
    .option('json', { type: 'boolean', default: false });
}

/** One line per entry: what made it. */
function describeKey(key: Record<string, unknown>): string {
  const { kind: _kind, model, ...rest } = key;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`);
  return `${typeof model === 'string' ? `model ${model.slice(0, 12)}… ` : ''}${fields.join(' ')}`;
}

export async function handler(argv: Args) {
  if (argv.action === 'clear') {
    const r = clearSamples(argv.kind);
    if (argv.json) printJson({ dir: samplesDir(), ...r });
    else process.stdout.write(`removed ${r.removed} entr${r.removed === 1 ? 'y' : 'ies'} (${formatBytes(r.bytes)}) from ${samplesDir()}\n`);
    return;
  }
  const entries = listSamples(argv.kind);
  if (argv.json) {
    printJson({ dir: samplesDir(), entries: entries.map((e) => ({ kind: e.kind, bytes: e.bytes, created: e.created, key: e.key, file: e.file })) });
    return;
  }
  const total = entries.reduce((a, e) => a + e.bytes, 0);
  process.stdout.write(`${samplesDir()}: ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${formatBytes(total)}\n`);
  for (const e of entries) process.stdout.write(`  ${e.kind.padEnd(12)} ${formatBytes(e.bytes).padStart(10)}  ${e.created.slice(0, 19)}  ${describeKey(e.key)}\n`);
}
