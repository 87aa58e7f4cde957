import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { cacheRoot } from '../paths';

/** What identifies a base model: the configs and weights of the components an erasure touches. */
const FINGERPRINTED = ['text_encoder', 'unet', 'vae'];

function cacheFile(): string {
  return path.join(cacheRoot(), 'fingerprints.json');
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function readCache(): Record<string, { size: number; mtimeMs: number; sha256: string }> {
  try {
    return JSON.parse(fs.readFileSync(cacheFile(), 'utf8'));
  } catch {
    return {};
  }
}

function writeCache(cache: Record<string, { size: number; mtimeMs: number; sha256: string }>): void {
  try {
    fs.mkdirSync(path.dirname(cacheFile()), { recursive: true });
    const tmp = `${cacheFile()}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(cache));
    fs.renameSync(tmp, cacheFile());
  } catch {
    // A cache that cannot be written only costs time.
  }
}

/** Each file's `component/file:sha256` line, in name order; file hashes cached by path, size and mtime. */
async function componentLines(dir: string, component: string, cache: ReturnType<typeof readCache>): Promise<{ lines: string[]; dirty: boolean }> {
  const sub = path.join(dir, component);
  const lines: string[] = [];
  let dirty = false;
  if (!fs.existsSync(sub)) return { lines, dirty };
  const files = fs.readdirSync(sub).filter((f) => f === 'config.json' || f.endsWith('.safetensors')).sort();
  for (const f of files) {
    const full = path.resolve(sub, f);
    const st = fs.statSync(full);
    let entry = cache[full];
    if (!entry || entry.size !== st.size || entry.mtimeMs !== st.mtimeMs) {
      entry = { size: st.size, mtimeMs: st.mtimeMs, sha256: await sha256File(full) };
      cache[full] = entry;
      dirty = true;
    }
    lines.push(`${component}/${f}:${entry.sha256}\n`);
  }
  return { lines, dirty };
}

/**
 * sha256 over each fingerprinted component's config.json and .safetensors files (by name, in
 * order). File hashes are cached by path, size and mtime, so a 4 GB checkpoint is read once.
 */
export async function modelFingerprint(dir: string): Promise<string> {
  const cache = readCache();
  let dirty = false;
  const outer = createHash('sha256');
  for (const component of FINGERPRINTED) {
    const r = await componentLines(dir, component, cache);
    dirty ||= r.dirty;
    for (const l of r.lines) outer.update(l);
  }
  if (dirty) writeCache(cache);
  return outer.digest('hex');
}

/**
 * One component's own fingerprint (its config.json and weights): what a delta touching only that
 * component is checked against, so a text-encoder delta applies to every model sharing the text
 * encoder (docs/architecture.md, "Delta files").
 */
export async function componentFingerprint(dir: string, component: string): Promise<string> {
  const cache = readCache();
  const r = await componentLines(dir, component, cache);
  if (r.dirty) writeCache(cache);
  if (r.lines.length === 0) throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${dir}: no ${component}/ with a config.json and weights to fingerprint`);
  const h = createHash('sha256');
  for (const l of r.lines) h.update(l);
  return h.digest('hex');
}
