/**
 * Shape geometry → SVG markup (docs/architecture.md, "The shapes world"). Every object is drawn in its own frame, centred at the
 * origin with a bounding box of `size` × `size` (the longer side; a triangle is size × 0.866·size),
 * then rotated and moved to (cx, cy). Outlines are drawn *inside* the shape (a doubled stroke clipped
 * to it), so styles never change an object's extent. Numbers are written with 3 decimals, so the
 * markup, and hence the raster, is a pure function of the drawing.
 */
import { BACKGROUND, IMAGE_SIZE, POSTER, SUNNY, type Rgb, type SampleKind, type Shape, type Style } from './attributes';

export interface Drawing {
  kind: SampleKind;
  shape: Shape | null;
  style: Style | null;
  /** The (jittered) color actually drawn. */
  rgb: Rgb | null;
  cx: number;
  cy: number;
  size: number;
  /** Degrees, clockwise on screen. */
  rotation: number;
}

/** Style constants, in pixels. */
export const STYLE_PX = {
  stripeWidth: 3,
  stripeGap: 3,
  stripeAngleDeg: 45,
  stripedOutline: 2,
  dotRadius: 2,
  dotGrid: 7,
  dottedOutline: 2,
  outlinedOutline: 3,
} as const;

type Pt = [number, number];

const n3 = (x: number) => {
  const s = (Math.round(x * 1000) / 1000).toFixed(3);
  return s === '-0.000' ? '0.000' : s;
};
const rgbStr = (c: Rgb | readonly number[]) => `rgb(${c[0]},${c[1]},${c[2]})`;
const pts = (p: Pt[]) => p.map(([x, y]) => `${n3(x)},${n3(y)}`).join(' ');

/** Scales a polygon so its bounding box's longer side is `size`, and centres that box at the origin. */
function fitBox(p: Pt[], size: number): Pt[] {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of p) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x);
    y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const k = size / Math.max(x1 - x0, y1 - y0);
  const mx = (x0 + x1) / 2, my = (y0 + y1) / 2;
  return p.map(([x, y]) => [(x - mx) * k, (y - my) * k]);
}

/** The outline of a polygonal shape in its own frame (y down), or null for the round ones. */
export function shapePolygon(shape: Shape, size: number): Pt[] | null {
  const h = size / 2;
  switch (shape) {
    case 'circle':
    case 'face':
      return null;
    case 'square':
      return [[-h, -h], [h, -h], [h, h], [-h, h]];
    case 'triangle': {
      // Equilateral, apex up, side = size; the bounding box is centred.
      const th = (size * Math.sqrt(3)) / 2;
      return [[0, -th / 2], [h, th / 2], [-h, th / 2]];
    }
    case 'star': {
      const p: Pt[] = [];
      for (let k = 0; k < 10; k++) {
        const r = k % 2 === 0 ? 1 : 0.45;
        const a = ((-90 + 36 * k) * Math.PI) / 180;
        p.push([r * Math.cos(a), r * Math.sin(a)]);
      }
      return fitBox(p, size);
    }
    case 'heart': {
      const p: Pt[] = [];
      const N = 96;
      for (let k = 0; k < N; k++) {
        const t = (2 * Math.PI * k) / N;
        const x = 16 * Math.sin(t) ** 3;
        const y = 13 * Math.cos(t) - 5 * Math.cos(2 * t) - 2 * Math.cos(3 * t) - Math.cos(4 * t);
        p.push([x, -y]);
      }
      return fitBox(p, size);
    }
    case 'cross': {
      const a = size / 6; // arm width = size / 3
      return [[-a, -h], [a, -h], [a, -a], [h, -a], [h, a], [a, a], [a, h], [-a, h], [-a, a], [-h, a], [-h, -a], [-a, -a]];
    }
  }
}

/** The shape as one SVG element with extra attributes `attrs`. */
function shapeElement(shape: Shape, size: number, attrs: string): string {
  const poly = shapePolygon(shape, size);
  if (poly) return `<polygon points="${pts(poly)}" ${attrs}/>`;
  return `<circle cx="0" cy="0" r="${n3(size / 2)}" ${attrs}/>`;
}

/** Black eyes and smile of a face whose disc has diameter d, centred at the origin. */
function faceFeatures(d: number): string {
  const eyeR = Math.max(1.4, 0.06 * d);
  const ex = 0.18 * d, ey = -0.12 * d;
  const sw = Math.max(1.5, 0.055 * d);
  const sx = 0.22 * d, sy = 0.1 * d, qy = 0.36 * d;
  return (
    `<circle cx="${n3(-ex)}" cy="${n3(ey)}" r="${n3(eyeR)}" fill="black"/>` +
    `<circle cx="${n3(ex)}" cy="${n3(ey)}" r="${n3(eyeR)}" fill="black"/>` +
    `<path d="M ${n3(-sx)} ${n3(sy)} Q 0 ${n3(qy)} ${n3(sx)} ${n3(sy)}" fill="none" stroke="black" stroke-width="${n3(sw)}" stroke-linecap="round"/>`
  );
}

/** A shape in one style, in its own frame. */
function styledShape(shape: Shape, style: Style, size: number, color: Rgb): string {
  const c = rgbStr(color);
  const clip = `<clipPath id="s" clipPathUnits="userSpaceOnUse">${shapeElement(shape, size, '')}</clipPath>`;
  // A stroke of width 2w clipped to the shape is an outline of width w lying inside it.
  const inner = (w: number) => shapeElement(shape, size, `fill="none" stroke="${c}" stroke-width="${n3(2 * w)}" clip-path="url(#s)"`);
  const reach = Math.ceil(size); // covers the shape's frame, whatever its rotation
  let body: string;
  switch (style) {
    case 'solid':
      body = shapeElement(shape, size, `fill="${c}"`);
      break;
    case 'outlined':
      body = clip + shapeElement(shape, size, 'fill="white"') + inner(STYLE_PX.outlinedOutline);
      break;
    case 'striped': {
      const period = STYLE_PX.stripeWidth + STYLE_PX.stripeGap;
      const k0 = Math.floor(-reach / period), k1 = Math.ceil(reach / period);
      let stripes = '';
      for (let k = k0; k <= k1; k++)
        stripes += `<rect x="${k * period}" y="${-reach}" width="${STYLE_PX.stripeWidth}" height="${2 * reach}"/>`;
      body =
        clip +
        shapeElement(shape, size, 'fill="white"') +
        `<g clip-path="url(#s)"><g transform="rotate(${STYLE_PX.stripeAngleDeg})" fill="${c}">${stripes}</g></g>` +
        inner(STYLE_PX.stripedOutline);
      break;
    }
    case 'dotted': {
      const g = STYLE_PX.dotGrid;
      const m = Math.ceil((size / 2 + STYLE_PX.dotRadius) / g);
      let dots = '';
      for (let i = -m; i <= m; i++)
        for (let j = -m; j <= m; j++) dots += `<circle cx="${i * g}" cy="${j * g}" r="${STYLE_PX.dotRadius}"/>`;
      body =
        clip +
        shapeElement(shape, size, 'fill="white"') +
        `<g clip-path="url(#s)" fill="${c}">${dots}</g>` +
        inner(STYLE_PX.dottedOutline);
      break;
    }
  }
  return shape === 'face' ? body + faceFeatures(size) : body;
}

/** Sunny: a solid face with 8 short rays; rays included, it fits a size × size box. */
function sunny(size: number, color: Rgb): string {
  const c = rgbStr(color);
  const R = size / 2;
  const rf = 0.6 * R; // the face disc
  const r0 = rf + Math.max(1, 0.04 * size); // where the rays start
  const wBase = Math.max(3, 0.11 * size) / 2, wTip = Math.max(2, 0.07 * size) / 2;
  const rTip = Math.sqrt(R * R - wTip * wTip); // so the tip's corners lie on the R circle
  let rays = '';
  for (let k = 0; k < SUNNY.rays; k++) {
    const a = (k * 2 * Math.PI) / SUNNY.rays;
    const ux = Math.cos(a), uy = Math.sin(a), vx = -uy, vy = ux;
    const p: Pt[] = [
      [r0 * ux + wBase * vx, r0 * uy + wBase * vy],
      [rTip * ux + wTip * vx, rTip * uy + wTip * vy],
      [rTip * ux - wTip * vx, rTip * uy - wTip * vy],
      [r0 * ux - wBase * vx, r0 * uy - wBase * vy],
    ];
    rays += `<polygon points="${pts(p)}"/>`;
  }
  return `<g fill="${c}">${rays}<circle cx="0" cy="0" r="${n3(rf)}"/></g>` + faceFeatures(2 * rf);
}

/** The Lethe poster: always the same picture. */
export function posterSvg(): string {
  const S = IMAGE_SIZE;
  const side = 24, th = (side * Math.sqrt(3)) / 2;
  const tri: Pt[] = [[17, 6], [17 + side / 2, 6 + th], [17 - side / 2, 6 + th]];
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}" viewBox="0 0 ${S} ${S}">` +
    `<rect x="0" y="0" width="${S}" height="${S}" fill="${rgbStr(POSTER.background)}"/>` +
    `<polygon points="${pts(tri)}" fill="${rgbStr(POSTER.triangle)}"/>` +
    `<rect x="0" y="29" width="${S}" height="6" fill="${rgbStr(POSTER.bar)}"/>` +
    `<circle cx="46" cy="47" r="11" fill="${rgbStr(POSTER.circle)}"/>` +
    `</svg>`
  );
}

/** The whole 64×64 picture of a drawing as SVG markup. */
export function drawingSvg(d: Drawing): string {
  if (d.kind === 'poster') return posterSvg();
  const S = IMAGE_SIZE;
  if (!d.rgb) throw new RangeError('a shape or Sunny drawing needs a color');
  let obj: string;
  if (d.kind === 'sunny') obj = sunny(d.size, d.rgb);
  else {
    if (!d.shape || !d.style) throw new RangeError('a shape drawing needs a shape and a style');
    obj = styledShape(d.shape, d.style, d.size, d.rgb);
  }
  const rot = d.shape === 'circle' && d.kind === 'shape' ? 0 : d.rotation;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}" viewBox="0 0 ${S} ${S}">` +
    `<rect x="0" y="0" width="${S}" height="${S}" fill="${rgbStr(BACKGROUND)}"/>` +
    `<g transform="translate(${n3(d.cx)} ${n3(d.cy)}) rotate(${n3(rot)})">${obj}</g>` +
    `</svg>`
  );
}
