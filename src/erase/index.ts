export { erase, parseConcepts, ESD_METHODS, ESD_PARAMETER_SETS, ESD_DEFAULTS } from './esd';
export type { EraseOptions, EraseResult, EsdMethod } from './esd';
export { readDeltaInfo, checkDeltasFor, DELTA_FORMAT, DELTA_FORMAT_VERSION } from './delta';
export type { DeltaInfo } from './delta';
export { modelFingerprint } from './fingerprint';
