/**
 * The one list of erasure methods: importing a method's file registers it (src/erase/method.ts).
 * Adding a method is its file here, one import line below, its native file and its tests
 * (docs/adding-a-method.md).
 */
import type { EsdOptions } from './esd';

import './esd';

export { ESD_METHODS, esdOptions } from './esd';
export type { EsdOptions } from './esd';

/** Every method's own options, for the API's types (each method validates its own). */
export type MethodOptions = EsdOptions;
