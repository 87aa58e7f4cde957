/**
 * The shapes world in motion (the text-to-video issue): clips of CLIP_FRAMES 64×64 frames in which
 * one object keeps every attribute and moves along a straight line (left, right, up, down) or
 * stays still, captioned "a red circle moving left", "a striped star", "Sunny moving up". And the
 * judge of a clip's motion: the object's centroid track, so an evaluation can say whether a video
 * model moved the object the way its caption says.
 */
import { ErrorCodes, LetheError } from '../errors';
import { BACKGROUND, IMAGE_SIZE } from './attributes';
import { renderPixels, sampleSpec, type SampleOptions, type SampleSpec } from './render';
import type { Rng } from './rng';

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
