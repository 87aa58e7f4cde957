/**
 * The one list of erasure methods: importing a method's file registers it (src/erase/method.ts).
 * Adding a method is its file here, one import line below, its native file and its tests
 * (docs/adding-a-method.md).
 */
import type { CaOptions } from './ca';
import type { DocoOptions } from './doco';
import type { EsdOptions } from './esd';
import type { FewshotOptions } from './fewshot';
import type { PromptMemoryOptions } from './prompt-memory';

import './esd';
import './ca';
import './fewshot';
import './prompt-memory';
import './doco';

export { ESD_METHODS, esdOptions } from './esd';
export type { EsdOptions } from './esd';
export { CA_METHODS, caOptions, promptPairs } from './ca';
export type { CaOptions, PromptPair } from './ca';
export { FEWSHOT_METHOD, fewshotOptions, fewshotPrompts, TE_PARAMETER_SETS } from './fewshot';
export type { FewshotOptions } from './fewshot';
export { PROMPT_MEMORY_METHOD, promptMemoryOptions } from './prompt-memory';
export type { PromptMemoryOptions } from './prompt-memory';
export { DOCO_METHOD, docoOptions } from './doco';
export type { DocoOptions } from './doco';

/** Every method's own options, for the API's types (each method validates its own). */
export type MethodOptions = EsdOptions & CaOptions & FewshotOptions & PromptMemoryOptions & DocoOptions;
