/**
 * Loads the native addon (node-gyp-build: prebuilds/ first, then build/Release) and gives its
 * surface a type. Loaded lazily, so `require('lethe')` costs nothing until native work is asked for.
 */
import * as path from 'path';
import { ErrorCodes, LetheError } from './errors';
import type { AnyTensor } from './tensor';

export interface ProgressEvent {
  phase: string;
  step: number;
  total: number;
  [value: string]: number | string;
}

export interface JobOptions {
  onProgress?: (ev: ProgressEvent) => void;
  cancel?: NativeCancelToken;
}

export interface NativeCancelToken {
  cancel(): void;
  readonly cancelled: boolean;
}

export interface NativeInfoRaw {
  torchVersion: string;
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  threads: number;
  interopThreads: number;
  /** The calling JS thread's own intra-op thread count: 1 (its small tensor work stays serial). */
  jsThreadTorchThreads: number;
  cxx11Abi: boolean;
  /** The libtorch library the process actually loaded. */
  libtorchPath: string;
  mkldnn: boolean;
  parallelInfo: string;
}

export interface SafetensorsHeaderEntry {
  name: string;
  dtype: string;
  storedDtype: string;
  shape: number[];
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  tensors: SafetensorsHeaderEntry[];
  headerBytes: number;
  fileBytes: number;
}

export interface MatmulBenchResult {
  dtype: string;
  device: string;
  size: number;
  iterations: number;
  seconds: number;
  gflops: number;
  threads: number;
}

export interface NativeModule {
  CancelToken: new () => NativeCancelToken;
  nativeInfo(): NativeInfoRaw;
  setThreads(n: number): number;
  benchMatmul(options: JobOptions & { size?: number; seconds?: number; dtype?: string; device?: string }): Promise<MatmulBenchResult>;
  readSafetensorsHeader(path: string): SafetensorsHeader;
  /** The native JSON reader on a text (for the fuzzer): the value, or LETHE_BAD_CHECKPOINT. */
  jsonProbe(text: Buffer): unknown;
  loadSafetensors(
    path: string,
    options?: JobOptions & { names?: string[] },
  ): Promise<{ tensors: Record<string, AnyTensor>; metadata: Record<string, string> }>;
  saveSafetensors(path: string, tensors: Record<string, AnyTensor>, options?: JobOptions & { metadata?: Record<string, string> }): Promise<void>;
}

export const PACKAGE_ROOT = path.resolve(__dirname, '..');

let cached: NativeModule | undefined;

export function native(): NativeModule {
  if (cached) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    // LETHE_ADDON names another build of the addon (the sanitizer build of scripts/sanitize.js).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    if (process.env.LETHE_ADDON) cached = require(path.resolve(process.env.LETHE_ADDON)) as NativeModule;
    else cached = (require('node-gyp-build') as (dir: string) => NativeModule)(PACKAGE_ROOT);
  } catch (e) {
    throw new LetheError(
      ErrorCodes.NATIVE_MISSING,
      `the native addon could not be loaded (${(e as Error).message.split('\n')[0]}). ` +
        'Run `npm run build:native` in the lethe package (it finds libtorch and builds the addon).',
    );
  }
  return cached;
}
