import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from './errors';
import { PACKAGE_ROOT } from './native';

/** The bundled default model (DESIGN §7), trained by `npm run train-default`. */
export const DEFAULT_MODEL_DIR = path.join(PACKAGE_ROOT, 'models', 'shapes-64');

/** `default` names the bundled model; anything else is a path to a diffusers folder. */
export function resolveModelDir(model: string): string {
  if (model === 'default') {
    if (!fs.existsSync(path.join(DEFAULT_MODEL_DIR, 'model_index.json')))
      throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `the bundled default model is missing at ${DEFAULT_MODEL_DIR} (train it with \`npm run train-default\`)`);
    return DEFAULT_MODEL_DIR;
  }
  const dir = path.resolve(model);
  if (!fs.existsSync(dir)) throw new LetheError(ErrorCodes.IO, `${model}: no such model folder`);
  if (!fs.statSync(dir).isDirectory())
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${model}: a model is a diffusers folder (model_index.json, unet/, vae/, ...), not a single file`);
  if (!fs.existsSync(path.join(dir, 'model_index.json')))
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${model}: no model_index.json; expected a diffusers folder (save one with pipeline.save_pretrained(DIR))`);
  return dir;
}
