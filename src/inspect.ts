import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from './errors';
import { readSafetensorsHeader, refusePickle } from './io/safetensors';
import { parseJsonWithNonFinite } from './schedulers';
import { numel } from './tensor';

export interface FileInspection {
  kind: 'safetensors';
  path: string;
  tensors: { name: string; dtype: string; shape: number[] }[];
  metadata: Record<string, string>;
  tensorCount: number;
  parameterCount: number;
  fileBytes: number;
  dtypes: Record<string, number>;
}

export interface ComponentInspection {
  name: string;
  library: string | null;
  className: string | null;
  config: Record<string, unknown> | null;
  weightFiles: string[];
  parameterCount: number;
  tensorCount: number;
  dtypes: Record<string, number>;
}

export interface FolderInspection {
  kind: 'diffusers';
  path: string;
  pipelineClass: string | null;
  components: ComponentInspection[];
  parameterCount: number;
}

/** A diffusers/transformers JSON file, or LETHE_BAD_CHECKPOINT naming it. */
export function readJson(file: string): Record<string, unknown> {
  try {
    // diffusers writes -Infinity / NaN into some scheduler configs, which JSON.parse rejects.
    return parseJsonWithNonFinite(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: not valid JSON (${(e as Error).message})`);
  }
}

export function inspectFile(file: string): FileInspection {
  refusePickle(file);
  const header = readSafetensorsHeader(file);
  const dtypes: Record<string, number> = {};
  let parameterCount = 0;
  for (const t of header.tensors) {
    const n = numel(t.shape);
    parameterCount += n;
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + n;
  }
  return {
    kind: 'safetensors',
    path: file,
    tensors: header.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
    metadata: header.metadata,
    tensorCount: header.tensors.length,
    parameterCount,
    fileBytes: header.fileBytes,
    dtypes,
  };
}

function inspectComponent(dir: string, name: string, spec: unknown): ComponentInspection {
  const [library, className] = Array.isArray(spec) ? (spec as (string | null)[]) : [null, null];
  const sub = path.join(dir, name);
  const out: ComponentInspection = { name, library, className, config: null, weightFiles: [], parameterCount: 0, tensorCount: 0, dtypes: {} };
  if (!fs.existsSync(sub) || !fs.statSync(sub).isDirectory()) return out;
  for (const cfgName of ['config.json', 'scheduler_config.json', 'tokenizer_config.json']) {
    const f = path.join(sub, cfgName);
    if (fs.existsSync(f)) {
      out.config = readJson(f);
      break;
    }
  }
  const files = fs.readdirSync(sub).sort();
  const weights = files.filter((f) => f.endsWith('.safetensors'));
  const pickles = files.filter((f) => /\.(bin|ckpt|pt|pth)$/.test(f));
  if (weights.length === 0 && pickles.length > 0) refusePickle(path.join(sub, pickles[0]));
  for (const w of weights) {
    const info = inspectFile(path.join(sub, w));
    out.weightFiles.push(w);
    out.parameterCount += info.parameterCount;
    out.tensorCount += info.tensorCount;
    for (const [k, v] of Object.entries(info.dtypes)) out.dtypes[k] = (out.dtypes[k] ?? 0) + v;
  }
  return out;
}

export function inspectFolder(dir: string): FolderInspection {
  const indexFile = path.join(dir, 'model_index.json');
  if (!fs.existsSync(indexFile))
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${dir}: no model_index.json; expected a diffusers model folder (or give a .safetensors file)`);
  const index = readJson(indexFile);
  const components = Object.entries(index)
    .filter(([k, v]) => !k.startsWith('_') && Array.isArray(v)) // components are [library, class] pairs
    .map(([k, v]) => inspectComponent(dir, k, v));
  return {
    kind: 'diffusers',
    path: dir,
    pipelineClass: typeof index._class_name === 'string' ? index._class_name : null,
    components,
    parameterCount: components.reduce((a, c) => a + c.parameterCount, 0),
  };
}

/** A .safetensors file or a diffusers model folder, described. */
export function inspect(target: string): FileInspection | FolderInspection {
  if (!fs.existsSync(target)) throw new LetheError(ErrorCodes.IO, `${target}: no such file or folder`);
  return fs.statSync(target).isDirectory() ? inspectFolder(target) : inspectFile(target);
}
