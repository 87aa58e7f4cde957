import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { runNativeJob } from '../job';
import { Pipeline } from '../pipeline';

/**
 * A merged model: the base folder copied, its UNet weights replaced by base + deltas. Written
 * into a temporary folder beside `out` and renamed, so `out` appears complete or not at all.
 */
export async function exportModel(model: string, deltas: string[], out: string): Promise<{ out: string; deltas: string[] }> {
  if (deltas.length === 0) throw new LetheError(ErrorCodes.BAD_ARGUMENT, 'give at least one --delta');
  if (fs.existsSync(out)) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `${out} already exists; choose a new folder`);
  const pipe = await Pipeline.load(model, { deltas });
  const tmp = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.tmp-${process.pid}`);
  try {
    fs.cpSync(pipe.dir, tmp, { recursive: true, filter: (src) => !/\.(bin|ckpt|pt|pth)$/.test(src) });
    const unetDir = path.join(tmp, 'unet');
    for (const f of fs.readdirSync(unetDir)) if (f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json')) fs.rmSync(path.join(unetDir, f));
    await runNativeJob((o) => pipe.nativeHandle.saveUnet({ ...o, path: path.join(unetDir, 'diffusion_pytorch_model.safetensors') }));
    const note = { merged_deltas: pipe.deltas.map((d) => ({ file: path.resolve(d.file), method: d.method, concepts: d.concepts })) };
    fs.writeFileSync(path.join(tmp, 'lethe_export.json'), JSON.stringify(note, null, 2) + '\n');
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { out, deltas };
}
