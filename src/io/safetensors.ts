import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { native, type SafetensorsHeader } from '../native';
import { runNativeJob, type RunOptions } from '../job';
import type { AnyTensor } from '../tensor';

export type { SafetensorsHeader };

const PICKLE_EXTENSIONS = ['.ckpt', '.bin', '.pt', '.pth', '.pkl', '.pickle'];

/** Pickle checkpoints can run arbitrary code when loaded: refuse them by name before reading a byte. */
export function refusePickle(file: string): void {
  const ext = path.extname(file).toLowerCase();
  if (PICKLE_EXTENSIONS.includes(ext)) {
    throw new LetheError(
      ErrorCodes.BAD_CHECKPOINT,
      `${file}: ${ext} files are Python pickles, which can run code when loaded; Lethe loads safetensors only. ` +
        'Convert it once in Python: `from safetensors.torch import save_file; save_file(torch.load(PATH, weights_only=True), OUT)` ' +
        '(or save a diffusers pipeline with save_pretrained(..., safe_serialization=True)).',
    );
  }
}

/** Validated header of a safetensors file (names, dtypes, shapes, metadata); no tensor data is read. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  refusePickle(file);
  return native().readSafetensorsHeader(file);
}

export async function loadSafetensors(
  file: string,
  options: RunOptions & { names?: string[] } = {},
): Promise<{ tensors: Record<string, AnyTensor>; metadata: Record<string, string> }> {
  refusePickle(file);
  const { onProgress, signal, names } = options;
  return runNativeJob((opts) => native().loadSafetensors(file, { ...opts, names }), { onProgress, signal });
}

/** Atomic: written beside `file` under a temporary name, synced, then renamed into place. */
export async function saveSafetensors(
  file: string,
  tensors: Record<string, AnyTensor>,
  options: RunOptions & { metadata?: Record<string, string> } = {},
): Promise<void> {
  const { onProgress, signal, metadata } = options;
  if (!fs.existsSync(path.dirname(path.resolve(file))))
    throw new LetheError(ErrorCodes.IO, `${file}: folder ${path.dirname(path.resolve(file))} does not exist`);
  return runNativeJob((opts) => native().saveSafetensors(file, tensors, { ...opts, metadata }), { onProgress, signal });
}
