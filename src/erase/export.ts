import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { runNativeJob } from '../job';
import { Pipeline } from '../pipeline';
import { readDeltaInfo } from './delta';

/** Where each component's merged weights go in a diffusers folder. */
const WEIGHTS_FILE: Record<string, string> = { unet: 'diffusion_pytorch_model.safetensors', text_encoder: 'model.safetensors' };

/**
 * A merged model: the base folder copied, the weights of every component a delta touches (UNet,
 * text encoder) replaced by base + deltas. Written into a temporary folder beside `out` and
 * renamed, so `out` appears complete or not at all. Prompt memory (`extra.` tensors) has no place
 * in a diffusers folder: such deltas are refused before anything is written, unless
 * `dropPromptMemory` exports their weights alone.
 */
export async function exportModel(
  model: string,
  deltas: string[],
  out: string,
  options: { dropPromptMemory?: boolean } = {},
): Promise<{ out: string; deltas: string[]; components: string[]; droppedPromptMemory: string[] }> {
  if (deltas.length === 0) throw new LetheError(ErrorCodes.BAD_ARGUMENT, 'give at least one --delta');
  if (fs.existsSync(out)) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `${out} already exists; choose a new folder`);
  const dropped: string[] = [];
  for (const d of deltas) {
    const info = readDeltaInfo(d);
    if (!info.extras.length) continue;
    if (!options.dropPromptMemory)
      throw new LetheError(
        ErrorCodes.BAD_ARGUMENT,
        `${d} carries prompt memory (${info.extras.join(', ')}): extra key/value tokens of the cross-attention layers, which a plain diffusers folder cannot represent. ` +
          'Keep using it with Lethe (`--delta` on generate / eval, or Pipeline.load(model, { deltas })), or export its weights alone with --drop-prompt-memory ' +
          '(the erasure then works without its memory: docs/prompt-memory.md measures what that costs).',
      );
    dropped.push(d);
  }
  const pipe = await Pipeline.load(model, { deltas, dropPromptMemory: options.dropPromptMemory });
  const components = [...new Set(pipe.deltas.flatMap((d) => d.components))].sort();
  const tmp = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.tmp-${process.pid}`);
  try {
    fs.cpSync(pipe.dir, tmp, { recursive: true, filter: (src) => !/\.(bin|ckpt|pt|pth)$/.test(src) });
    for (const component of components) {
      const dir = path.join(tmp, component);
      for (const f of fs.readdirSync(dir)) if (f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json')) fs.rmSync(path.join(dir, f));
      await runNativeJob((o) => pipe.nativeHandle.saveComponent({ ...o, component, path: path.join(dir, WEIGHTS_FILE[component]) }));
    }
    const note = {
      merged_deltas: pipe.deltas.map((d) => ({
        file: path.resolve(d.file),
        method: d.method,
        concepts: d.concepts,
        components: d.components,
        ...(d.droppedExtras?.length ? { droppedPromptMemory: d.droppedExtras } : {}),
      })),
    };
    fs.writeFileSync(path.join(tmp, 'lethe_export.json'), JSON.stringify(note, null, 2) + '\n');
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { out, deltas, components, droppedPromptMemory: dropped };
}
