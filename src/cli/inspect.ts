import type { Argv } from 'yargs';
import { inspect, type FileInspection, type FolderInspection } from '../inspect';
import { formatBytes, formatCount, printJson } from './output';

export const command = 'inspect <path>';
export const describe = 'List the tensors of a .safetensors file, or the components of a diffusers model folder';

export function builder(y: Argv) {
  return y
    .positional('path', { type: 'string', demandOption: true, describe: '.safetensors file or diffusers folder' })
    .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
    .option('limit', { type: 'number', default: 50, describe: 'tensors to list in text output (0: all)' });
}

function printFile(r: FileInspection, limit: number) {
  const shown = limit > 0 ? r.tensors.slice(0, limit) : r.tensors;
  const w = Math.max(4, ...shown.map((t) => t.name.length));
  process.stdout.write(`${r.path}: safetensors, ${r.tensorCount} tensors, ${formatCount(r.parameterCount)} values, ${formatBytes(r.fileBytes)}\n`);
  for (const [k, v] of Object.entries(r.metadata)) process.stdout.write(`  meta ${k} = ${v.length > 120 ? v.slice(0, 117) + '...' : v}\n`);
  for (const t of shown) process.stdout.write(`  ${t.name.padEnd(w)}  ${t.dtype.padEnd(8)}  [${t.shape.join(', ')}]\n`);
  if (shown.length < r.tensors.length) process.stdout.write(`  … ${r.tensors.length - shown.length} more (--limit 0 lists all)\n`);
  process.stdout.write(`  dtypes: ${Object.entries(r.dtypes).map(([k, v]) => `${k} ${formatCount(v)}`).join(', ')}\n`);
}

function printFolder(r: FolderInspection) {
  process.stdout.write(`${r.path}: diffusers ${r.pipelineClass ?? 'pipeline'}, ${formatCount(r.parameterCount)} parameters\n`);
  for (const c of r.components) {
    const cls = c.className ? `${c.library}.${c.className}` : 'none';
    process.stdout.write(`  ${c.name.padEnd(14)} ${cls}`);
    if (c.weightFiles.length) process.stdout.write(`  ${formatCount(c.parameterCount)} params in ${c.weightFiles.join(', ')}`);
    process.stdout.write('\n');
    if (c.config) {
      const keys = Object.entries(c.config).filter(([k, v]) => !k.startsWith('_') && (typeof v !== 'object' || Array.isArray(v)));
      const text = keys.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ');
      process.stdout.write(`      ${text.length > 400 ? text.slice(0, 397) + '...' : text}\n`);
    }
  }
}

export async function handler(argv: { path: string; json: boolean; limit: number }) {
  const r = inspect(argv.path);
  if (argv.json) return printJson(r);
  if (r.kind === 'safetensors') printFile(r, argv.limit);
  else printFolder(r);
}
