/** Lethe: erase concepts from text-to-image diffusion models. The public API. */
export { nativeInfo, setThreads, benchMatmul } from './info';
export type { NativeInfo, MatmulBenchOptions } from './info';
export { readSafetensorsHeader, loadSafetensors, saveSafetensors } from './io/safetensors';
export { inspect, inspectFile, inspectFolder } from './inspect';
export type { FileInspection, FolderInspection, ComponentInspection } from './inspect';
export { LetheError, ErrorCodes, isLetheError } from './errors';
export type { ErrorCode } from './errors';
export { tensor, numel } from './tensor';
export type { Tensor, AnyTensor, DType } from './tensor';
export type { ProgressEvent, RunOptions } from './job';
