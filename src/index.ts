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
export { Pipeline, randomLatents } from './pipeline';
export type { PipelineLoadOptions, PipelineInfo, GenerateOptions, GenerateResult, EncodePromptOptions, ComputeDtype } from './pipeline';
export { CLIPTokenizer } from './tokenizer';
export type { TokenizerEncoding } from './tokenizer';
export { makePlan, erasureSamplingPlan, applyPlan, readSchedulerConfig, SAMPLER_NAMES } from './schedulers';
export type { SamplingPlan, SamplingStep, SamplerName } from './schedulers';
export { resolveModelDir, DEFAULT_MODEL_DIR } from './models';
export { pngOf, toRgb8 } from './image';
export {
  erase,
  methodIds,
  getMethod,
  registerMethod,
  describeApplied,
  readDeltaInfo,
  modelFingerprint,
  componentFingerprint,
  exportModel,
  PARAMETER_PRESETS,
  resolveParams,
  ESD_METHODS,
  CA_METHODS,
  FEWSHOT_METHOD,
  fewshotPrompts,
  promptPairs,
} from './erase';
export type { EraseOptions, EraseResult, AppliedOptions, ErasureMethod, EsdOptions, CaOptions, FewshotOptions, PromptPair, DeltaInfo, ParameterSelection } from './erase';
export { readModelDefaults } from './models';
export type { ModelDefaults } from './models';
