import type { Argv } from 'yargs';
import { benchMatmul, nativeInfo } from '../info';
import { printJson } from './output';

export const command = 'info';
export const describe = 'Show the native core: torch version, CUDA, threads, where libtorch came from';

export function builder(y: Argv) {
  return y
    .option('json', { type: 'boolean', default: false, describe: 'print JSON' })
    .option('bench', { type: 'boolean', default: false, describe: "measure this machine's fp32 and bf16 matmul GFLOP/s" })
    .option('size', { type: 'number', default: 1024, describe: 'matrix size for --bench' })
    .option('seconds', { type: 'number', default: 2, describe: 'seconds per dtype for --bench' })
    .option('device', { type: 'string', default: 'cpu', describe: 'device for --bench (cpu, cuda, cuda:N)' });
}

export async function handler(argv: { json: boolean; bench: boolean; size: number; seconds: number; device: string }) {
  const info = nativeInfo();
  let bench: Record<string, unknown> | undefined;
  if (argv.bench) {
    bench = {};
    for (const dtype of ['float32', 'bfloat16'] as const) {
      if (!argv.json) process.stderr.write(`measuring ${dtype} matmul (${argv.size}×${argv.size}, ${argv.seconds}s)…\n`);
      bench[dtype] = await benchMatmul({ dtype, size: argv.size, seconds: argv.seconds, device: argv.device });
    }
  }
  if (argv.json) return printJson(bench ? { ...info, bench } : info);
  const rows: [string, string][] = [
    ['torch', info.torchVersion],
    ['CUDA compiled', String(info.cudaCompiled)],
    ['CUDA available', `${info.cudaAvailable} (${info.cudaDeviceCount} device${info.cudaDeviceCount === 1 ? '' : 's'})`],
    ['threads', `${info.threads} intra-op, ${info.interopThreads} inter-op`],
    ['C++ ABI', info.cxx11Abi ? 'cxx11' : 'pre-cxx11'],
    ['libtorch', info.libtorchPath],
    ['libtorch source', info.libtorchSource ?? 'unknown (prebuilt addon)'],
    ['addon', info.addonPath ?? 'not found'],
  ];
  if (bench)
    for (const [k, v] of Object.entries(bench)) {
      const r = v as { gflops: number; size: number; device: string };
      rows.push([`${k} matmul`, `${r.gflops.toFixed(1)} GFLOP/s (${r.size}², ${r.device})`]);
    }
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
}
