import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import { ErrorCodes, LetheError } from './errors';
import { PACKAGE_ROOT } from './native';
import { SAMPLER_NAMES } from './schedulers';

/** The bundled default model (docs/architecture.md, "The shapes world"), trained by `npm run train-default`. */
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

/** The file in a model folder that carries the model's own defaults (docs/architecture.md, "Defaults"). */
export const MODEL_DEFAULTS_FILE = 'lethe.json';

const modelDefaultsSchema = z
  .object({
    format: z.literal('lethe-model-defaults'),
    format_version: z.literal(1),
    /** The synthetic world the model was trained on ("shapes" for the bundled models): methods may use its prompt sets. */
    world: z.enum(['shapes']).optional(),
    /** What generate, eval and every method that samples use unless told otherwise. */
    generation: z
      .object({
        scheduler: z.enum(SAMPLER_NAMES as unknown as [string, ...string[]]).optional(),
        steps: z.number().int().min(1).max(1000).optional(),
        guidance: z.number().finite().optional(),
      })
      .strict()
      .optional(),
    erase: z
      .object({
        /** The method `lethe erase` uses on this model when none is named. */
        method: z.string().optional(),
        /** Per method id: measured option values (validated against the method's schema when used). */
        methods: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
      })
      .strict()
      .optional(),
    /** Where the measurements behind these defaults are written up. */
    measured: z.string().optional(),
  })
  .strict();

export type ModelDefaults = z.infer<typeof modelDefaultsSchema>;

/** The model folder's lethe.json, validated; {} when the folder has none (a user's checkpoint). */
export function readModelDefaults(dir: string): ModelDefaults | Record<string, never> {
  const file = path.join(dir, MODEL_DEFAULTS_FILE);
  if (!fs.existsSync(file)) return {};
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: not readable JSON (${(e as Error).message})`);
  }
  const r = modelDefaultsSchema.safeParse(raw);
  if (!r.success) throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return r.data;
}
