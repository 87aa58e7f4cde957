import * as os from 'os';
import * as path from 'path';

/**
 * The per-user cache every Lethe process on the machine shares (fingerprints, generated samples;
 * scripts/libtorch.js puts the torch wheel there too): LETHE_CACHE_DIR, else
 * $XDG_CACHE_HOME/lethe, else ~/.cache/lethe.
 */
export function cacheRoot(): string {
  if (process.env.LETHE_CACHE_DIR) return process.env.LETHE_CACHE_DIR;
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lethe');
}
