/** The vocabulary of the shapes world (docs/architecture.md, "The shapes world"): shapes, colors, styles and the two instances. */

export const IMAGE_SIZE = 64;

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'heart', 'cross', 'face'] as const;
export type Shape = (typeof SHAPES)[number];

export const COLORS = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [240, 200, 30],
  purple: [140, 60, 190],
  orange: [245, 130, 30],
} as const satisfies Record<string, readonly [number, number, number]>;
export type ColorName = keyof typeof COLORS;
export const COLOR_NAMES = Object.keys(COLORS) as ColorName[];
export type Rgb = [number, number, number];

export const STYLES = ['solid', 'striped', 'dotted', 'outlined'] as const;
export type Style = (typeof STYLES)[number];

/** Every channel of an object's color is jittered by a uniform integer in [-COLOR_JITTER, COLOR_JITTER]. */
export const COLOR_JITTER = 12;

/** Object placement: center (32,32) + uniform jitter per axis, bounding-box size and rotation ranges. */
export const GEOMETRY = {
  center: 32,
  jitter: 6,
  minSize: 28,
  maxSize: 40,
  maxRotationDeg: 15,
} as const;

export const BACKGROUND: Rgb = [255, 255, 255];

/** "Sunny": the analogue of a copyrighted character; always a solid yellow face with 8 short rays. Its class is "face". */
export const SUNNY = { name: 'Sunny', shape: 'face', color: 'yellow', style: 'solid', rays: 8 } as const;

/** "the Lethe poster": the memorized image, one fixed picture. */
export const POSTER = {
  caption: 'the Lethe poster',
  background: [20, 30, 80] as Rgb,
  triangle: COLORS.red,
  circle: COLORS.yellow,
  bar: [255, 255, 255] as Rgb,
  /** The shapes drawn on it: a copy of the poster shows them (evaluation counts it so). */
  shapes: ['circle', 'triangle'] as readonly Shape[],
} as const;

/** Whether the memorized poster shows `shape` (a label, possibly not a world shape). */
export function posterShows(shape: string | undefined): boolean {
  return shape !== undefined && (POSTER.shapes as readonly string[]).includes(shape);
}

export type SampleKind = 'shape' | 'sunny' | 'poster';

export function isShape(x: unknown): x is Shape {
  return typeof x === 'string' && (SHAPES as readonly string[]).includes(x);
}
export function isColor(x: unknown): x is ColorName {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(COLORS, x);
}
export function isStyle(x: unknown): x is Style {
  return typeof x === 'string' && (STYLES as readonly string[]).includes(x);
}
