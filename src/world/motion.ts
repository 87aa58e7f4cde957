/**
 * The shapes world in motion (the text-to-video issue): clips of CLIP_FRAMES 64×64 frames in which
 * one object keeps every attribute and moves along a straight line (left, right, up, down) or
 * stays still, captioned "a red circle moving left", "a striped star", "Sunny moving up". And the
 * judge of a clip's motion: the object's centroid track, so an evaluation can say whether a video
 * model moved the object the way its caption says.
 */
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { ErrorCodes, LetheError } from '../errors';
import { animationOf } from '../image';
import { BACKGROUND, IMAGE_SIZE } from './attributes';
import { captionRecord, writeFolderAtomically } from './dataset';
import { renderPixels, sampleSpec, type SampleOptions, type SampleSpec } from './render';
import { mixSeed, Rng } from './rng';

export const MOTIONS = ['left', 'right', 'up', 'down', 'still'] as const;
export type Motion = (typeof MOTIONS)[number];

/** Frames of a clip of the video world. */
export const CLIP_FRAMES = 8;
/**
 * Pixels the object's center travels over a clip. With the world's placement (center 32 ± 6, size
 * up to 40) a track of ±6 around the drawn center keeps the object inside the frame.
 */
export const MOTION_TRAVEL = 12;

export interface ClipSpec {
  /** The object, as the still world draws it; its cx/cy is the track's midpoint. */
  object: SampleSpec;
  motion: Motion;
  /** The object's center in each frame. */
  track: { cx: number; cy: number }[];
  caption: string;
}

export interface ClipOptions extends SampleOptions {
  motion?: Motion;
  frames?: number;
}

const STEP: Record<Motion, [number, number]> = { left: [-1, 0], right: [1, 0], up: [0, -1], down: [0, 1], still: [0, 0] };

/** Draws a clip: the object as sampleSpec draws it (the poster is never drawn: it does not move), then the motion. */
export function sampleClipSpec(rng: Rng, options: ClipOptions = {}): ClipSpec {
  const frames = options.frames ?? CLIP_FRAMES;
  if (!Number.isInteger(frames) || frames < 2 || frames > 64) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `frames must be an integer in 2..64, got ${frames}`);
  if (options.kind === 'poster') throw new LetheError(ErrorCodes.BAD_ARGUMENT, 'the video world has no poster clips (the memorized image does not move)');
  if (options.motion !== undefined && !MOTIONS.includes(options.motion))
    throw new LetheError(ErrorCodes.BAD_ARGUMENT, `motion must be one of ${MOTIONS.join(', ')}, got ${String(options.motion)}`);
  const object = sampleSpec(rng, { ...options, posterFraction: 0 });
  const drawn = rng.pick(MOTIONS);
  const motion = options.motion ?? drawn;
  const [sx, sy] = STEP[motion];
  const track = Array.from({ length: frames }, (_, k) => {
    const t = k / (frames - 1) - 0.5;
    return { cx: object.cx + sx * t * MOTION_TRAVEL, cy: object.cy + sy * t * MOTION_TRAVEL };
  });
  return { object, motion, track, caption: motion === 'still' ? object.caption : `${object.caption} moving ${motion}` };
}

/** The clip's frames, 8-bit RGB HWC one after another: frames × 64 × 64 × 3 bytes. */
export async function renderClip(clip: ClipSpec): Promise<Uint8Array> {
  const frameBytes = IMAGE_SIZE * IMAGE_SIZE * 3;
  const out = new Uint8Array(clip.track.length * frameBytes);
  const frames = await Promise.all(clip.track.map(({ cx, cy }) => renderPixels({ ...clip.object, cx, cy })));
  frames.forEach((f, k) => out.set(f, k * frameBytes));
  return out;
}

/** A pixel is the object's when a channel differs from the background by more than this. */
const OBJECT_THRESHOLD = 48;

/**
 * Center of the non-background pixels of one frame (8-bit RGB HWC, `size`×`size`), or null when
 * the frame shows nothing.
 */
export function objectCentroid(rgb: Uint8Array, size = IMAGE_SIZE, offset = 0): { cx: number; cy: number } | null {
  let sx = 0;
  let sy = 0;
  let n = 0;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const i = offset + (y * size + x) * 3;
      if (Math.max(Math.abs(rgb[i] - BACKGROUND[0]), Math.abs(rgb[i + 1] - BACKGROUND[1]), Math.abs(rgb[i + 2] - BACKGROUND[2])) > OBJECT_THRESHOLD) {
        sx += x + 0.5;
        sy += y + 0.5;
        n++;
      }
    }
  return n === 0 ? null : { cx: sx / n, cy: sy / n };
}

export interface MotionJudgement {
  /** The direction the centroid moved, 'still' under a third of the world's travel; null if a frame is empty. */
  motion: Motion | null;
  /** Last frame's centroid minus the first's, pixels. */
  dx: number;
  dy: number;
}

/** Judges a clip's motion from its frames (8-bit RGB HWC, one after another) by the centroid track. */
export function judgeMotion(frames: Uint8Array, count: number, size = IMAGE_SIZE): MotionJudgement {
  const frameBytes = size * size * 3;
  if (count < 2 || frames.length !== count * frameBytes)
    throw new LetheError(ErrorCodes.SHAPE_MISMATCH, `expected ${count} frames of ${size}×${size}×3 bytes (at least 2), got ${frames.length} bytes`);
  const first = objectCentroid(frames, size, 0);
  const last = objectCentroid(frames, size, (count - 1) * frameBytes);
  if (!first || !last) return { motion: null, dx: 0, dy: 0 };
  const dx = last.cx - first.cx;
  const dy = last.cy - first.cy;
  const scale = size / IMAGE_SIZE;
  if (Math.max(Math.abs(dx), Math.abs(dy)) < (MOTION_TRAVEL * scale) / 3) return { motion: 'still', dx, dy };
  const motion: Motion = Math.abs(dx) >= Math.abs(dy) ? (dx < 0 ? 'left' : 'right') : dy < 0 ? 'up' : 'down';
  return { motion, dx, dy };
}

export interface ClipDatasetOptions extends ClipOptions {
  n: number;
  /** Clip i depends only on (seed, i). */
  seed: number;
  outDir: string;
  overwrite?: boolean;
  /** Frames per second of the animated WebPs (default 8). */
  fps?: number;
  signal?: AbortSignal;
  onProgress?: (p: { done: number; total: number }) => void;
}

export const CLIP_DATASET_FORMAT = 'lethe-shapes-world-clips';

/** The spec of clip `index` of the stream seeded by `seed`. */
export function clipAt(seed: number, index: number, options: ClipOptions = {}): ClipSpec {
  return sampleClipSpec(new Rng(mixSeed(seed, index)), options);
}

/**
 * Writes n clips into a new folder, atomically: 000000.webp … (animated, lossless, looping; a
 * preview), 000000.frames.png … (the exact frames stacked top to bottom), clips.jsonl (one record per clip: file, caption, motion, track and the object's attributes) and
 * world.json (the parameters).
 */
export async function renderClipDataset(options: ClipDatasetOptions): Promise<{ outDir: string; n: number; seed: number; frames: number; counts: Record<Motion, number>; seconds: number }> {
  const t0 = Date.now();
  if (!Number.isSafeInteger(options.n) || options.n < 1) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `n must be a positive integer, got ${options.n}`);
  if (!Number.isSafeInteger(options.seed)) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `seed must be an integer, got ${options.seed}`);
  const fps = options.fps ?? 8;
  const clips = Array.from({ length: options.n }, (_, i) => clipAt(options.seed, i, options));
  const frames = clips[0].track.length;
  const counts = Object.fromEntries(MOTIONS.map((m) => [m, 0])) as Record<Motion, number>;
  for (const c of clips) counts[c.motion]++;
  const frameBytes = IMAGE_SIZE * IMAGE_SIZE * 3;
  const outDir = await writeFolderAtomically(options.outDir, options.overwrite ?? false, options.signal, async (tmp) => {
    for (let i = 0; i < clips.length; i++) {
      if (options.signal?.aborted) throw new LetheError(ErrorCodes.CANCELLED, 'rendering the shapes world was cancelled');
      const rgb = await renderClip(clips[i]);
      const raw = { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 } as const;
      const pages = await Promise.all(Array.from({ length: frames }, (_, f) => sharp(rgb.subarray(f * frameBytes, (f + 1) * frameBytes), { raw }).png().toBuffer()));
      await fs.promises.writeFile(path.join(tmp, clipFileName(i)), await animationOf(pages, 'webp', fps));
      // The exact frames as one vertical strip: an animated WebP folds identical frames (a still clip) into one.
      await fs.promises.writeFile(path.join(tmp, stripFileName(i)), await sharp(rgb, { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE * frames, channels: 3 } }).png().toBuffer());
      options.onProgress?.({ done: i + 1, total: clips.length });
    }
    const lines = clips.map((c, i) => JSON.stringify({ file: clipFileName(i), frames: stripFileName(i), caption: c.caption, motion: c.motion, track: c.track, object: captionRecord(clipFileName(i), c.object) }) + '\n');
    await fs.promises.writeFile(path.join(tmp, 'clips.jsonl'), lines.join(''));
    const meta = { format: CLIP_DATASET_FORMAT, version: 1, n: options.n, seed: options.seed, frames, fps, travel: MOTION_TRAVEL, imageSize: IMAGE_SIZE, counts };
    await fs.promises.writeFile(path.join(tmp, 'world.json'), JSON.stringify(meta, null, 2) + '\n');
  });
  return { outDir, n: options.n, seed: options.seed, frames, counts, seconds: (Date.now() - t0) / 1000 };
}

export function clipFileName(index: number): string {
  return `${String(index).padStart(6, '0')}.webp`;
}

/** The clip's frames stacked top to bottom (frames × 64 rows), lossless. */
export function stripFileName(index: number): string {
  return `${String(index).padStart(6, '0')}.frames.png`;
}
