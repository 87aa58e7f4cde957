/** Sampling a scene (spec) and rasterising it to a 64×64 RGB image with sharp. */
import sharp from 'sharp';
import { ErrorCodes, LetheError } from '../errors';
import {
  COLOR_JITTER,
  COLOR_NAMES,
  COLORS,
  GEOMETRY,
  IMAGE_SIZE,
  POSTER,
  SHAPES,
  STYLES,
  SUNNY,
  isColor,
  isShape,
  isStyle,
  type ColorName,
  type Rgb,
  type SampleKind,
  type Shape,
  type Style,
} from './attributes';
import { formatCaption, templateById, templatesFor } from './captions';
import { Rng } from './rng';
import { drawingSvg, type Drawing } from './svg';

export interface SampleSpec extends Drawing {
  kind: SampleKind;
  /** 'face' for Sunny; null for the poster. */
  shape: Shape | null;
  /** The named color ('yellow' for Sunny); null for the poster. */
  color: ColorName | null;
  /** 'solid' for Sunny; null for the poster. */
  style: Style | null;
  /** The color actually drawn: the named color with each channel jittered by up to ±12. */
  rgb: Rgb | null;
  /** Object center in pixels (32 ± 6); 32 for the poster. */
  cx: number;
  cy: number;
  /** Bounding-box size in pixels, 28..40 (longer side, before rotation); 64 for the poster. */
  size: number;
  /** Degrees in [-15, 15]; 0 for circles and the poster. */
  rotation: number;
  caption: string;
  /** The caption template's id (see captions.ts). */
  template: string;
  /** Which attributes the caption names. */
  named: { shape: boolean; color: boolean; style: boolean };
}

export interface SampleOptions {
  /** Fraction of samples that are the Lethe poster (default 0.03; the world asks for at least 0.02). */
  posterFraction?: number;
  /** Fraction of samples that are Sunny (default 0.06). */
  sunnyFraction?: number;
  /** Force an attribute (the rest are still drawn at random). */
  kind?: SampleKind;
  shape?: Shape;
  color?: ColorName;
  style?: Style;
  template?: string;
}

export const DEFAULT_POSTER_FRACTION = 0.03;
export const DEFAULT_SUNNY_FRACTION = 0.06;

const round = (x: number, d: number) => Math.round(x * 10 ** d) / 10 ** d;

function bad(reason: string): never {
  throw new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

export function checkSampleOptions(o: SampleOptions): { posterFraction: number; sunnyFraction: number } {
  const posterFraction = o.posterFraction ?? DEFAULT_POSTER_FRACTION;
  const sunnyFraction = o.sunnyFraction ?? DEFAULT_SUNNY_FRACTION;
  for (const [k, v] of [['posterFraction', posterFraction], ['sunnyFraction', sunnyFraction]] as const)
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) bad(`${k} must be a number in [0, 1], got ${v}`);
  if (posterFraction + sunnyFraction > 1) bad(`posterFraction + sunnyFraction must be at most 1, got ${posterFraction + sunnyFraction}`);
  if (o.shape !== undefined && !isShape(o.shape)) bad(`unknown shape ${String(o.shape)}`);
  if (o.color !== undefined && !isColor(o.color)) bad(`unknown color ${String(o.color)}`);
  if (o.style !== undefined && !isStyle(o.style)) bad(`unknown style ${String(o.style)}`);
  if (o.kind !== undefined && !['shape', 'sunny', 'poster'].includes(o.kind)) bad(`unknown kind ${String(o.kind)}`);
  if (o.template !== undefined) {
    const t = templateById(o.template);
    if (!t) bad(`unknown caption template ${o.template}`);
    if (o.kind !== undefined && t.kind !== o.kind) bad(`caption template ${o.template} is for kind ${t.kind}, not ${o.kind}`);
  }
  const kind = o.kind ?? (o.template !== undefined ? templateById(o.template)?.kind : undefined);
  if (kind === 'poster' && (o.shape || o.color || o.style)) bad('the poster has no shape, color or style to force');
  if (kind === 'sunny' && ((o.shape && o.shape !== SUNNY.shape) || (o.color && o.color !== SUNNY.color) || (o.style && o.style !== SUNNY.style)))
    bad('Sunny is always a solid yellow face');
  return { posterFraction, sunnyFraction };
}

/**
 * Draws one scene. The RNG is always advanced by the same number of draws, whatever is forced,
 * so forcing one attribute does not reshuffle the others.
 */
export function sampleSpec(rng: Rng, options: SampleOptions = {}): SampleSpec {
  const { posterFraction, sunnyFraction } = checkSampleOptions(options);
  const u = rng.next();
  let kind: SampleKind = u < posterFraction ? 'poster' : u < posterFraction + sunnyFraction ? 'sunny' : 'shape';
  const forcedTemplate = options.template ? templateById(options.template) : undefined;
  const forcesAttribute = options.shape !== undefined || options.color !== undefined || options.style !== undefined;
  kind = options.kind ?? forcedTemplate?.kind ?? (forcesAttribute ? 'shape' : kind);
  let shape: Shape = options.shape ?? rng.pick(SHAPES);
  let color: ColorName = options.color ?? rng.pick(COLOR_NAMES);
  let style: Style = options.style ?? rng.pick(STYLES);
  const tplDraw = rng.next();
  const jitter = [rng.int(-COLOR_JITTER, COLOR_JITTER), rng.int(-COLOR_JITTER, COLOR_JITTER), rng.int(-COLOR_JITTER, COLOR_JITTER)];
  const cx = round(GEOMETRY.center + rng.uniform(-GEOMETRY.jitter, GEOMETRY.jitter), 3);
  const cy = round(GEOMETRY.center + rng.uniform(-GEOMETRY.jitter, GEOMETRY.jitter), 3);
  const size = round(rng.uniform(GEOMETRY.minSize, GEOMETRY.maxSize), 3);
  let rotation = round(rng.uniform(-GEOMETRY.maxRotationDeg, GEOMETRY.maxRotationDeg), 2);

  if (kind === 'poster') {
    const tpl = templatesFor('poster')[0];
    return {
      kind, shape: null, color: null, style: null, rgb: null,
      cx: IMAGE_SIZE / 2, cy: IMAGE_SIZE / 2, size: IMAGE_SIZE, rotation: 0,
      caption: POSTER.caption, template: tpl.id, named: { ...tpl.names },
    };
  }
  if (kind === 'sunny') {
    shape = SUNNY.shape;
    color = SUNNY.color;
    style = SUNNY.style;
  }
  if (kind === 'shape' && shape === 'circle') rotation = 0;
  const templates = templatesFor(kind);
  const tpl = forcedTemplate ?? templates[Math.floor(tplDraw * templates.length)];
  const base = COLORS[color];
  const rgb: Rgb = [0, 1, 2].map((i) => Math.min(255, Math.max(0, base[i] + jitter[i]))) as Rgb;
  return {
    kind, shape, color, style, rgb, cx, cy, size, rotation,
    caption: formatCaption(tpl, { shape, color, style }),
    template: tpl.id,
    named: { ...tpl.names },
  };
}

export interface RenderedSample {
  /** The image as a PNG file. */
  png: Buffer;
  /** The image as 8-bit RGB, row-major, HWC: 64 * 64 * 3 bytes. */
  rgb: Uint8Array;
}

let posterCache: Promise<RenderedSample> | undefined;

async function rasterisePixels(svg: string): Promise<Buffer> {
  const { data, info } = await sharp(Buffer.from(svg), { density: 72 })
    .flatten({ background: '#ffffff' })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== IMAGE_SIZE || info.height !== IMAGE_SIZE || info.channels !== 3)
    throw new LetheError(ErrorCodes.INTERNAL, `SVG rendered to ${info.width}×${info.height}×${info.channels}, expected 64×64×3`);
  return data;
}

async function rasterise(svg: string): Promise<RenderedSample> {
  const data = await rasterisePixels(svg);
  const png = await sharp(data, { raw: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false, palette: false })
    .toBuffer();
  return { png, rgb: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Renders a scene. Deterministic: the same spec gives byte-identical PNG and pixels. */
export async function renderSample(spec: Drawing): Promise<RenderedSample> {
  if (spec.kind === 'poster') {
    if (!posterCache) {
      posterCache = rasterise(drawingSvg(spec));
      posterCache.catch(() => (posterCache = undefined));
    }
    const p = await posterCache;
    // Copies, so a caller that writes into them cannot change the next poster.
    return { png: Buffer.from(p.png), rgb: new Uint8Array(p.rgb) };
  }
  return rasterise(drawingSvg(spec));
}

/** Only the pixels (64 * 64 * 3, HWC) of a scene, skipping the PNG encoding: the same bytes as renderSample's `rgb`. */
export async function renderPixels(spec: Drawing): Promise<Uint8Array> {
  if (spec.kind === 'poster') return (await renderSample(spec)).rgb;
  const data = await rasterisePixels(drawingSvg(spec));
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** The poster (the memorized image), rendered. */
export function renderPoster(): Promise<RenderedSample> {
  return renderSample({ kind: 'poster', shape: null, style: null, rgb: null, cx: 32, cy: 32, size: 64, rotation: 0 });
}
