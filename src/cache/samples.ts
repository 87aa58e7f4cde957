/**
 * Generated samples on disk, shared by every run, method, sweep trial and evaluation on the
 * machine (docs/architecture.md, "Sample cache"): the base model's evaluation images today, anchor
 * latents and sampled trajectories as methods need them. An entry is keyed by what made it — the
 * model's fingerprint (and its deltas'), the prompts, the sampler and its settings, the seed — so
 * it is reused exactly when the same samples would be drawn again. Entries are safetensors files,
 * written atomically, checked against their key when read; a damaged entry is made again.
 *
 * Where: <cache root>/samples/<kind>/<sha256 of the key>.safetensors (src/paths.ts). Set
 * LETHE_SAMPLE_CACHE=0 to neither read nor write it. `lethe cache ls|clear` manages it.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../io/safetensors';
import { cacheRoot } from '../paths';
import type { AnyTensor } from '../tensor';

export interface SampleKey {
  /** What the entry holds: generation, anchors, trajectories… (a folder name). */
  kind: string;
  /** Everything that determines the samples (JSON values). */
  [field: string]: unknown;
}

export interface SampleCacheEntry {
  file: string;
  kind: string;
  key: SampleKey;
  bytes: number;
  created: string;
}

const FORMAT = 'lethe-samples';

export function samplesDir(): string {
  return path.join(cacheRoot(), 'samples');
}

export function sampleCacheEnabled(): boolean {
  return process.env.LETHE_SAMPLE_CACHE !== '0';
}

/** JSON with object keys sorted, so equal keys hash equally. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

function entryFile(key: SampleKey): string {
  if (!/^[a-z][a-z0-9-]*$/.test(key.kind)) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `sample cache: kind '${key.kind}' must be lower-case letters, digits and '-'`);
  return path.join(samplesDir(), key.kind, `${createHash('sha256').update(canonical(key)).digest('hex')}.safetensors`);
}

/**
 * The cached tensors for `key`, or `make()`'s, stored for next time. A cache that cannot be read or
 * written costs time, never the result.
 */
export async function cachedSamples<T extends Record<string, AnyTensor>>(key: SampleKey, make: () => Promise<T>): Promise<{ tensors: T; hit: boolean }> {
  if (!sampleCacheEnabled()) return { tensors: await make(), hit: false };
  const file = entryFile(key);
  const want = canonical(key);
  if (fs.existsSync(file)) {
    try {
      const { tensors, metadata } = await loadSafetensors(file);
      if (metadata.format === FORMAT && metadata.key === want) return { tensors: tensors as T, hit: true };
    } catch {
      // Damaged or foreign: made again below and replaced.
    }
  }
  const tensors = await make();
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    await saveSafetensors(file, tensors, { metadata: { format: FORMAT, kind: key.kind, key: want, created: new Date().toISOString() } });
  } catch {
    // A read-only or full cache only costs time.
  }
  return { tensors, hit: false };
}

/** Every entry, newest first. */
export function listSamples(kind?: string): SampleCacheEntry[] {
  const root = samplesDir();
  if (!fs.existsSync(root)) return [];
  const out: SampleCacheEntry[] = [];
  for (const k of fs.readdirSync(root)) {
    if (kind && k !== kind) continue;
    const dir = path.join(root, k);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const f of fs.readdirSync(dir)) {
      if (!f.endsWith('.safetensors')) continue;
      const file = path.join(dir, f);
      try {
        const h = readSafetensorsHeader(file);
        if (h.metadata.format !== FORMAT) continue;
        out.push({ file, kind: k, key: JSON.parse(h.metadata.key) as SampleKey, bytes: h.fileBytes, created: h.metadata.created ?? '' });
      } catch {
        out.push({ file, kind: k, key: { kind: k }, bytes: fs.statSync(file).size, created: '' });
      }
    }
  }
  return out.sort((a, b) => b.created.localeCompare(a.created));
}

/** Removes entries (of one kind, or all) and leftover temporary files; returns what went. */
export function clearSamples(kind?: string): { removed: number; bytes: number } {
  const root = samplesDir();
  let removed = 0;
  let bytes = 0;
  if (!fs.existsSync(root)) return { removed, bytes };
  for (const k of fs.readdirSync(root)) {
    if (kind && k !== kind) continue;
    const dir = path.join(root, k);
    if (!fs.statSync(dir).isDirectory()) continue;
    for (const f of fs.readdirSync(dir)) {
      const file = path.join(dir, f);
      bytes += fs.statSync(file).size;
      fs.rmSync(file, { force: true });
      removed++;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { removed, bytes };
}
