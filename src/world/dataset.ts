/**
 * Rendering many samples: to memory (a [n, 64, 64, 3] uint8 batch for training) or to a folder of
 * PNGs plus captions.jsonl, written atomically (into a hidden temporary folder next to the target,
 * renamed into place only once everything is written; on failure or cancellation it is removed).
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { IMAGE_SIZE, type SampleKind } from './attributes';
import { checkSampleOptions, renderPixels, renderSample, sampleSpec, type SampleOptions, type SampleSpec } from './render';
import { mixSeed, Rng } from './rng';

export interface DatasetProgress {
  done: number;
  total: number;
}

export interface DatasetOptions extends SampleOptions {
  /** Number of samples. */
  n: number;
  /** Any safe integer; sample i depends only on (seed, i). */
  seed: number;
  /** Index of the first sample (default 0): renders samples start … start + n - 1 of the stream. */
  start?: number;
  /** sharp renders in flight at once (default 32). */
  concurrency?: number;
  onProgress?: (p: DatasetProgress) => void;
  signal?: AbortSignal;
}

export interface WorldBatch {
  /** n × 64 × 64 × 3 bytes, HWC per image. */
  images: Uint8Array;
  shape: [number, number, number, number];
  specs: SampleSpec[];
}

export interface DatasetWriteOptions extends DatasetOptions {
  /** The folder to create. It must not exist, unless `overwrite`. */
  outDir: string;
  overwrite?: boolean;
}

export interface DatasetWriteResult {
  outDir: string;
  n: number;
  seed: number;
  counts: Record<SampleKind, number>;
  seconds: number;
}

/** One line of captions.jsonl. */
export interface CaptionRecord extends SampleSpec {
  file: string;
}

export const DATASET_FORMAT = 'lethe-shapes-world';
export const DATASET_VERSION = 1;

/** The spec of sample `index` of the stream seeded by `seed`. */
export function specAt(seed: number, index: number, options: SampleOptions = {}): SampleSpec {
  return sampleSpec(new Rng(mixSeed(seed, index)), options);
}

/** The specs of samples start … start + n - 1. */
export function specsFor(n: number, seed: number, options: SampleOptions = {}, start = 0): SampleSpec[] {
  const out: SampleSpec[] = [];
  for (let i = 0; i < n; i++) out.push(specAt(seed, start + i, options));
  return out;
}

export function fileName(index: number): string {
  return `${String(index).padStart(6, '0')}.png`;
}

function checkOptions(o: DatasetOptions) {
  const bad = (r: string): never => {
    throw new LetheError(ErrorCodes.BAD_ARGUMENT, r);
  };
  if (!Number.isSafeInteger(o.n) || o.n < 0) bad(`n must be a non-negative integer, got ${o.n}`);
  if (!Number.isSafeInteger(o.seed)) bad(`seed must be an integer, got ${o.seed}`);
  const start = o.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) bad(`start must be a non-negative integer, got ${start}`);
  const concurrency = o.concurrency ?? 32;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) bad(`concurrency must be a positive integer, got ${concurrency}`);
  checkSampleOptions(o);
  return { start, concurrency };
}

function cancelled(): LetheError {
  return new LetheError(ErrorCodes.CANCELLED, 'rendering the shapes world was cancelled');
}

/** Renders the specs in batches of `concurrency` renders in flight, handing each result to `sink`. */
async function renderAll<T>(
  specs: SampleSpec[],
  concurrency: number,
  render: (spec: SampleSpec) => Promise<T>,
  sink: (i: number, out: T) => Promise<void> | void,
  onProgress?: (p: DatasetProgress) => void,
  signal?: AbortSignal,
): Promise<void> {
  const total = specs.length;
  for (let b = 0; b < total; b += concurrency) {
    if (signal?.aborted) throw cancelled();
    const idx = Array.from({ length: Math.min(concurrency, total - b) }, (_, k) => b + k);
    const out = await Promise.all(idx.map((i) => render(specs[i])));
    await Promise.all(out.map((r, k) => sink(idx[k], r)));
    onProgress?.({ done: b + idx.length, total });
  }
  if (signal?.aborted) throw cancelled();
}

/** Renders n samples to memory: a [n, 64, 64, 3] uint8 batch and the specs (with captions). */
export async function renderBatch(options: DatasetOptions): Promise<WorldBatch> {
  const { start, concurrency } = checkOptions(options);
  const specs = specsFor(options.n, options.seed, options, start);
  const px = IMAGE_SIZE * IMAGE_SIZE * 3;
  const images = new Uint8Array(options.n * px);
  await renderAll(specs, concurrency, renderPixels, (i, rgb) => void images.set(rgb, i * px), options.onProgress, options.signal);
  return { images, shape: [options.n, IMAGE_SIZE, IMAGE_SIZE, 3], specs };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.promises.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Renders a dataset. With `outDir`: writes 000000.png … and captions.jsonl (plus world.json, the
 * parameters) into that folder, atomically. Without: the same samples in memory (renderBatch).
 */
export function renderDataset(options: DatasetWriteOptions): Promise<DatasetWriteResult>;
export function renderDataset(options: DatasetOptions & { outDir?: undefined }): Promise<WorldBatch>;
export async function renderDataset(options: DatasetOptions & { outDir?: string; overwrite?: boolean }): Promise<DatasetWriteResult | WorldBatch> {
  if (options.outDir === undefined) return renderBatch(options);
  const t0 = Date.now();
  const { start, concurrency } = checkOptions(options);
  const { posterFraction, sunnyFraction } = checkSampleOptions(options);
  const specs = specsFor(options.n, options.seed, options, start);
  const counts: Record<SampleKind, number> = { shape: 0, sunny: 0, poster: 0 };
  for (const s of specs) counts[s.kind]++;
  const outDir = await writeFolderAtomically(options.outDir, options.overwrite ?? false, options.signal, async (tmp) => {
    await renderAll(
      specs,
      concurrency,
      renderSample,
      (i, r) => fs.promises.writeFile(path.join(tmp, fileName(start + i)), r.png),
      options.onProgress,
      options.signal,
    );
    const lines = specs.map((s, i) => JSON.stringify(captionRecord(fileName(start + i), s)) + '\n');
    await fs.promises.writeFile(path.join(tmp, 'captions.jsonl'), lines.join(''));
    const meta = {
      format: DATASET_FORMAT, version: DATASET_VERSION, n: options.n, seed: options.seed, start,
      posterFraction, sunnyFraction, imageSize: IMAGE_SIZE, counts,
    };
    await fs.promises.writeFile(path.join(tmp, 'world.json'), JSON.stringify(meta, null, 2) + '\n');
  });
  return { outDir, n: options.n, seed: options.seed, counts, seconds: (Date.now() - t0) / 1000 };
}

/**
 * Creates `target` all at once: `fill` writes into a hidden temporary folder next to it, which is
 * renamed into place only when `fill` finished and nothing was cancelled; on failure it is removed.
 * An existing target is refused unless `overwrite` (then replaced by two renames).
 */
export async function writeFolderAtomically(target: string, overwrite: boolean, signal: AbortSignal | undefined, fill: (tmp: string) => Promise<void>): Promise<string> {
  const outDir = path.resolve(target);
  if ((await exists(outDir)) && !overwrite)
    throw new LetheError(ErrorCodes.BAD_ARGUMENT, `${outDir} already exists (overwrite replaces it)`);
  const parent = path.dirname(outDir);
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `.${path.basename(outDir)}.partial-${tag}`);
  try {
    await fs.promises.mkdir(parent, { recursive: true });
    await fs.promises.mkdir(tmp);
  } catch (e) {
    throw new LetheError(ErrorCodes.IO, `cannot create ${tmp}: ${(e as Error).message}`);
  }
  try {
    await fill(tmp);
    if (signal?.aborted) throw cancelled();
    if (await exists(outDir)) {
      // overwrite: move the old folder aside, put the new one in place, then delete the old one.
      const old = path.join(parent, `.${path.basename(outDir)}.old-${tag}`);
      await fs.promises.rename(outDir, old);
      await fs.promises.rename(tmp, outDir);
      await fs.promises.rm(old, { recursive: true, force: true });
    } else await fs.promises.rename(tmp, outDir);
    return outDir;
  } catch (e) {
    await fs.promises.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (e instanceof LetheError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err?.code && typeof err.code === 'string' && !err.code.startsWith('LETHE_'))
      throw new LetheError(ErrorCodes.IO, `writing ${outDir}: ${err.message}`);
    throw e;
  }
}

/** A captions.jsonl record: the file name first, then the spec's fields. */
export function captionRecord(file: string, s: SampleSpec): CaptionRecord {
  return {
    file,
    caption: s.caption,
    kind: s.kind,
    shape: s.shape,
    color: s.color,
    style: s.style,
    cx: s.cx,
    cy: s.cy,
    size: s.size,
    rotation: s.rotation,
    rgb: s.rgb,
    template: s.template,
    named: s.named,
  };
}

/** Reads a dataset folder's captions.jsonl back. */
export async function readCaptions(dir: string): Promise<CaptionRecord[]> {
  const text = await fs.promises.readFile(path.join(dir, 'captions.jsonl'), 'utf8');
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as CaptionRecord);
}
