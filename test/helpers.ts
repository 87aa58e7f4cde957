import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..');

export function tmpDir(prefix = 'lethe-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'lethe.js'), ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...(opts.env ?? {}) },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Expect a promise or function to fail with a given Lethe error code. */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<Error> {
  try {
    if (typeof p === 'function') await p();
    else await p;
  } catch (e) {
    expect((e as { code?: string }).code).toBe(code);
    return e as Error;
  }
  throw new Error(`expected an error with code ${code}, but it succeeded`);
}

type Values = { data: ArrayLike<number> };
export function maxAbs(t: Values): number {
  let m = 0;
  for (let i = 0; i < t.data.length; i++) m = Math.max(m, Math.abs(t.data[i]));
  return m;
}
export function maxAbsDiff(a: Values, b: Values): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

/**
 * A native delta against its reference's, key by key: within 1% of the largest update element by
 * element; except that Adam divides each element's step by its own gradient scale, so an element
 * whose gradient is ~0 (float noise in both runs) may take a different full-size step (ca-model
 * without prior on the random fixture model has 3 such elements in 24,576). At most 1 in 1000 may,
 * and none beyond 15%.
 */
export function expectSameDelta(ours: Record<string, unknown>, ref: Record<string, unknown>): void {
  type T = { data: Float32Array };
  expect(Object.keys(ours).sort()).toEqual(Object.keys(ref).sort());
  let largest = 0;
  for (const k of Object.keys(ref)) largest = Math.max(largest, maxAbs(ref[k] as T));
  expect(largest).toBeGreaterThan(0);
  let elements = 0;
  let outside = 0;
  let diff = 0;
  for (const k of Object.keys(ref)) {
    const a = (ours[k] as T).data;
    const b = (ref[k] as T).data;
    elements += b.length;
    for (let i = 0; i < b.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      diff = Math.max(diff, d);
      if (d > 0.01 * largest) outside++;
    }
  }
  expect(outside).toBeLessThanOrEqual(elements / 1000);
  expect(diff).toBeLessThanOrEqual(0.15 * largest);
}

/**
 * Points LETHE_CACHE_DIR at `dir` for the test file that calls it (at its top level), restored
 * afterwards: a test that compares generated samples (anchors) with a reference must make its
 * own, not reuse a machine's cache (its key does not hold Lethe's version).
 */
export function isolateCache(dir: string): void {
  const saved = process.env.LETHE_CACHE_DIR;
  beforeAll(() => {
    process.env.LETHE_CACHE_DIR = dir;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.LETHE_CACHE_DIR;
    else process.env.LETHE_CACHE_DIR = saved;
  });
}
