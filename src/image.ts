import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { ErrorCodes, LetheError } from './errors';
import type { Tensor } from './tensor';

/** One image of a [n, 3, H, W] tensor in [0, 1] as 8-bit RGB, rounded as diffusers' numpy_to_pil. */
export function toRgb8(images: Tensor, index: number): { data: Buffer; width: number; height: number } {
  const [n, c, h, w] = images.shape;
  if (images.shape.length !== 4 || c !== 3) throw new LetheError(ErrorCodes.SHAPE_MISMATCH, `images must be [n, 3, H, W], got [${images.shape}]`);
  if (index < 0 || index >= n) throw new RangeError(`image index ${index} out of range`);
  const plane = h * w;
  const base = index * 3 * plane;
  const out = Buffer.alloc(plane * 3);
  for (let p = 0; p < plane; p++)
    for (let ch = 0; ch < 3; ch++) {
      const v = images.data[base + ch * plane + p];
      out[p * 3 + ch] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
  return { data: out, width: w, height: h };
}

export async function pngOf(images: Tensor, index: number): Promise<Buffer> {
  const { data, width, height } = toRgb8(images, index);
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/**
 * Frames (encoded images, e.g. PNGs, all one size) as an animated WebP (lossless) or GIF that
 * loops, at `fps` frames per second: sharp joins them as pages. libwebp folds identical
 * consecutive frames into one page with a longer delay.
 */
export async function animationOf(frames: Buffer[], format: 'webp' | 'gif', fps: number): Promise<Buffer> {
  if (frames.length === 0) throw new LetheError(ErrorCodes.BAD_ARGUMENT, 'an animation needs at least one frame');
  if (!(fps > 0 && fps <= 100)) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `fps must be in (0, 100], got ${fps}`);
  const delay = Array<number>(frames.length).fill(Math.round(1000 / fps));
  const joined = sharp(frames, { join: { animated: true } });
  return (format === 'webp' ? joined.webp({ loop: 0, delay, lossless: true }) : joined.gif({ loop: 0, delay })).toBuffer();
}

/**
 * Writes several files so that either all of them appear or none: each goes to a temporary name
 * first, and the renames happen only once every write succeeded.
 */
export async function writeFilesAtomically(files: { file: string; data: Buffer | string }[], signal?: AbortSignal): Promise<void> {
  const temps: string[] = [];
  try {
    for (const { file, data } of files) {
      if (signal?.aborted) throw new LetheError(ErrorCodes.CANCELLED, 'cancelled before the outputs were written');
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
      await fs.promises.writeFile(tmp, data);
      temps.push(tmp);
    }
    for (let i = 0; i < files.length; i++) await fs.promises.rename(temps[i], files[i].file);
  } catch (e) {
    for (const t of temps) await fs.promises.rm(t, { force: true });
    throw e;
  }
}
