import * as fs from 'fs';
import * as path from 'path';
import { native, PACKAGE_ROOT, type MatmulBenchResult, type NativeInfoRaw } from './native';
import { runNativeJob, type RunOptions } from './job';

export interface NativeInfo extends Omit<NativeInfoRaw, 'parallelInfo'> {
  /** Where the build took libtorch from (LIBTORCH, python, cache), from build-config/torch.json. */
  libtorchSource: string | null;
  addonPath: string | null;
}

function buildRecord(): { source?: string } | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'build-config', 'torch.json'), 'utf8'));
  } catch {
    return null;
  }
}

function addonPath(): string | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('node-gyp-build') as { resolve(dir: string): string }).resolve(PACKAGE_ROOT);
  } catch {
    return null;
  }
}

/** What the native core runs on: torch version, CUDA, threads, where libtorch came from. */
export function nativeInfo(): NativeInfo {
  const raw = native().nativeInfo();
  return {
    torchVersion: raw.torchVersion,
    cudaCompiled: raw.cudaCompiled,
    cudaAvailable: raw.cudaAvailable,
    cudaDeviceCount: raw.cudaDeviceCount,
    threads: raw.threads,
    interopThreads: raw.interopThreads,
    jsThreadTorchThreads: raw.jsThreadTorchThreads,
    cxx11Abi: raw.cxx11Abi,
    libtorchPath: raw.libtorchPath,
    libtorchSource: buildRecord()?.source ?? null,
    addonPath: addonPath(),
    mkldnn: raw.mkldnn,
  };
}

/** Sets torch's intra-op thread count for this process; returns the count now in force. */
export function setThreads(n: number): number {
  return native().setThreads(n);
}

export interface MatmulBenchOptions extends RunOptions {
  dtype?: 'float32' | 'bfloat16' | 'float16';
  size?: number;
  seconds?: number;
  device?: string;
}

/** Achieved matmul GFLOP/s through the addon: the ceiling later benchmarks are compared with. */
export function benchMatmul(options: MatmulBenchOptions = {}): Promise<MatmulBenchResult> {
  const { onProgress, signal, ...rest } = options;
  return runNativeJob((opts) => native().benchMatmul({ ...rest, ...opts }), { onProgress, signal });
}
