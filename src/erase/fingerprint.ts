import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** What identifies a base model: the configs and weights of the components an erasure touches. */
const FINGERPRINTED = ['text_encoder', 'unet', 'vae'];

function cacheFile(): string {
  const base = process.env.LETHE_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lethe');
  return path.join(base, 'fingerprints.json');
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * sha256 over each fingerprinted component's config.json and .safetensors files (by name, in
 * order). File hashes are cached by path, size and mtime, so a 4 GB checkpoint is read once.
 */
export async function modelFingerprint(dir: string): Promise<string> {
  let cache: Record<string, { size: number; mtimeMs: number; sha256: string }> = {};
  try {
    cache = JSON.parse(fs.readFileSync(cacheFile(), 'utf8'));
  } catch {
    cache = {};
  }
  let dirty = false;
  const outer = createHash('sha256');
  for (const component of FINGERPRINTED) {
    const sub = path.join(dir, component);
    if (!fs.existsSync(sub)) continue;
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
      outer.update(`${component}/${f}:${entry.sha256}\n`);
    }
  }
  if (dirty) {
    try {
      fs.mkdirSync(path.dirname(cacheFile()), { recursive: true });
      const tmp = `${cacheFile()}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, JSON.stringify(cache));
      fs.renameSync(tmp, cacheFile());
    } catch {
      // A cache that cannot be written only costs time.
    }
  }
  return outer.digest('hex');
}
