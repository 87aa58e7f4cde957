import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import yargs from 'yargs';
import * as worldCli from '../src/cli/world';
import {
  COLOR_NAMES,
  COLORS,
  SHAPES,
  STYLES,
  SHAPE_TEMPLATES,
  Rng,
  formatCaption,
  readCaptions,
  renderBatch,
  renderDataset,
  renderPoster,
  renderSample,
  sampleSpec,
  shapePolygon,
  specAt,
  specsFor,
  type SampleSpec,
} from '../src/world';
import { expectCode, tmpDir } from './helpers';

const dir = tmpDir('lethe-world-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const S = 64;
type Img = Uint8Array;
const px = (img: Img, x: number, y: number): [number, number, number] => {
  const i = (y * S + x) * 3;
  return [img[i], img[i + 1], img[i + 2]];
};
const near = (a: readonly number[], b: readonly number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]) <= tol);
const isWhite = (p: readonly number[], t = 250) => p.every((v) => v >= t);

/** The bounding box of pixels with any channel below `t`. */
function inkBox(img: Img, t = 230) {
  let x0 = S, x1 = -1, y0 = S, y1 = -1;
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++)
      if (px(img, x, y).some((v) => v < t)) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
  return { x0, x1, y0, y1, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

async function renderAll(specs: SampleSpec[]) {
  return Promise.all(specs.map((s) => renderSample(s)));
}

describe('rng', () => {
  test('same seed, same stream; different seeds differ; values in [0, 1)', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const xa = Array.from({ length: 100 }, () => a.next());
    const xb = Array.from({ length: 100 }, () => b.next());
    const xc = Array.from({ length: 100 }, () => c.next());
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
    expect(xa.every((v) => v >= 0 && v < 1)).toBe(true);
    const r = new Rng(7);
    const ints = Array.from({ length: 2000 }, () => r.int(-12, 12));
    expect(Math.min(...ints)).toBe(-12);
    expect(Math.max(...ints)).toBe(12);
  });
});

describe('captions', () => {
  test('articles and the fixed captions', () => {
    expect(formatCaption('style-shape-in-color', { shape: 'square', color: 'purple', style: 'outlined' })).toBe('an outlined square in purple');
    expect(formatCaption('color-shape', { shape: 'circle', color: 'orange', style: 'solid' })).toBe('an orange circle');
    expect(formatCaption('style-color-shape', { shape: 'star', color: 'blue', style: 'striped' })).toBe('a striped blue star');
    expect(formatCaption('picture-color-shape', { shape: 'heart', color: 'green', style: 'solid' })).toBe('a picture of a green heart');
    expect(formatCaption('drawing-style-color-shape', { shape: 'cross', color: 'yellow', style: 'dotted' })).toBe('a drawing of a dotted yellow cross');
    expect(SHAPE_TEMPLATES.length).toBeGreaterThanOrEqual(8);
    expect(SHAPE_TEMPLATES.every((t) => t.names.shape)).toBe(true);
  });

  test('≥ 8 distinct templates in 500 samples; captions name exactly what they say', () => {
    const specs = specsFor(500, 11);
    const templates = new Set(specs.map((s) => s.template));
    expect(templates.size).toBeGreaterThanOrEqual(8);
    for (const s of specs) {
      const words = s.caption.split(' ');
      if (s.kind === 'poster') {
        expect(s.caption).toBe('the Lethe poster');
        continue;
      }
      if (s.kind === 'sunny') {
        expect(words).toContain('Sunny');
        expect(words.some((w) => (SHAPES as readonly string[]).includes(w) || w in COLORS || (STYLES as readonly string[]).includes(w))).toBe(false);
        continue;
      }
      expect(words).toContain(s.shape);
      expect(words.includes(s.color!)).toBe(s.named.color);
      expect(words.includes(s.style!)).toBe(s.named.style);
      expect(s.caption).not.toMatch(/\ba [aeiou]/);
    }
  });

  test('attributes a caption does not name are drawn at random', async () => {
    const specs = specsFor(3000, 5).filter((s) => s.kind === 'shape');
    const noColor = specs.filter((s) => !s.named.color);
    const noStyle = specs.filter((s) => !s.named.style);
    expect(new Set(noColor.map((s) => s.color)).size).toBe(COLOR_NAMES.length);
    expect(new Set(noStyle.map((s) => s.style)).size).toBe(STYLES.length);
    // One caption, many pictures: "a red circle" spans styles, positions, sizes and color jitter.
    const red = Array.from({ length: 200 }, (_, i) => specAt(3, i, { shape: 'circle', color: 'red', template: 'color-shape' }));
    expect(new Set(red.map((s) => s.caption))).toEqual(new Set(['a red circle']));
    expect(new Set(red.map((s) => s.style)).size).toBe(4);
    expect(new Set(red.map((s) => s.rgb!.join())).size).toBeGreaterThan(100);
    expect(Math.max(...red.map((s) => s.size)) - Math.min(...red.map((s) => s.size))).toBeGreaterThan(8);
    expect(Math.max(...red.map((s) => s.cx)) - Math.min(...red.map((s) => s.cx))).toBeGreaterThan(8);
    const imgs = await renderAll(red.slice(0, 8));
    expect(new Set(imgs.map((r) => r.png.toString('base64'))).size).toBe(8);
  });
});

describe('sampling', () => {
  test('the poster and Sunny fractions are honoured', () => {
    const n = 20000;
    const count = (specs: SampleSpec[], k: string) => specs.filter((s) => s.kind === k).length;
    const d = specsFor(n, 1);
    const sd = (p: number) => 4 * Math.sqrt(n * p * (1 - p));
    expect(Math.abs(count(d, 'poster') - n * 0.03)).toBeLessThan(sd(0.03));
    expect(count(d, 'poster') / n).toBeGreaterThanOrEqual(0.02);
    expect(Math.abs(count(d, 'sunny') - n * 0.06)).toBeLessThan(sd(0.06));
    const e = specsFor(n, 2, { posterFraction: 0.1, sunnyFraction: 0.2 });
    expect(Math.abs(count(e, 'poster') - n * 0.1)).toBeLessThan(sd(0.1));
    expect(Math.abs(count(e, 'sunny') - n * 0.2)).toBeLessThan(sd(0.2));
    expect(count(specsFor(2000, 3, { posterFraction: 0 }), 'poster')).toBe(0);
  });

  test('geometry and colors are drawn in their ranges', () => {
    const specs = specsFor(3000, 9).filter((s) => s.kind !== 'poster');
    for (const s of specs) {
      expect(s.cx).toBeGreaterThanOrEqual(26);
      expect(s.cx).toBeLessThanOrEqual(38);
      expect(s.cy).toBeGreaterThanOrEqual(26);
      expect(s.cy).toBeLessThanOrEqual(38);
      expect(s.size).toBeGreaterThanOrEqual(28);
      expect(s.size).toBeLessThanOrEqual(40);
      expect(Math.abs(s.rotation)).toBeLessThanOrEqual(15);
      if (s.kind === 'shape' && s.shape === 'circle') expect(s.rotation).toBe(0);
      expect(near(s.rgb!, COLORS[s.color!], 12)).toBe(true);
    }
    const faces = specs.filter((s) => s.shape === 'face' || s.kind === 'sunny');
    expect(faces.some((s) => Math.abs(s.rotation) > 5)).toBe(true);
  });

  test('bad options are refused with LETHE_BAD_ARGUMENT', async () => {
    await expectCode(() => sampleSpec(new Rng(1), { posterFraction: 1.5 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(() => sampleSpec(new Rng(1), { posterFraction: 0.6, sunnyFraction: 0.6 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(() => sampleSpec(new Rng(1), { shape: 'hexagon' as never }), 'LETHE_BAD_ARGUMENT');
    await expectCode(() => sampleSpec(new Rng(1), { kind: 'sunny', color: 'red' }), 'LETHE_BAD_ARGUMENT');
    await expectCode(renderBatch({ n: -1, seed: 1 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(renderBatch({ n: 1, seed: 1.5 }), 'LETHE_BAD_ARGUMENT');
  });
});

describe('rendering', () => {
  test('same spec → byte-identical PNG and pixels; the PNG decodes to the pixels', async () => {
    const specs = specsFor(30, 4);
    const a = await renderAll(specs);
    const b = await renderAll(specs);
    for (let i = 0; i < specs.length; i++) {
      expect(a[i].png.equals(b[i].png)).toBe(true);
      expect(Buffer.from(a[i].rgb).equals(Buffer.from(b[i].rgb))).toBe(true);
      expect(a[i].rgb.length).toBe(S * S * 3);
    }
    const { data, info } = await sharp(a[0].png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([64, 64, 3]);
    expect(data.equals(Buffer.from(a[0].rgb))).toBe(true);
  });

  test('the poster is one fixed image: navy, red triangle upper left, yellow circle lower right, white bar', async () => {
    const p1 = await renderPoster();
    p1.rgb.fill(0); // a caller scribbling on its copy changes nothing
    const p2 = await renderPoster();
    const p3 = await renderSample(specAt(0, 0, { kind: 'poster' }));
    expect(p2.png.equals(p3.png)).toBe(true);
    expect(Buffer.from(p2.rgb).equals(Buffer.from(p3.rgb))).toBe(true);
    const img = p2.rgb;
    for (const [x, y] of [[0, 0], [63, 0], [0, 63], [63, 63], [50, 10], [10, 50]]) expect(px(img, x, y)).toEqual([20, 30, 80]);
    expect(px(img, 17, 20)).toEqual([220, 40, 40]);
    expect(px(img, 46, 47)).toEqual([240, 200, 30]);
    for (const x of [0, 20, 32, 63]) expect(px(img, x, 31)).toEqual([255, 255, 255]);
    // Poster specs carry no attributes and no jitter.
    const posters = specsFor(2000, 8).filter((s) => s.kind === 'poster');
    expect(posters.length).toBeGreaterThan(20);
    for (const s of posters) expect(s).toMatchObject({ caption: 'the Lethe poster', shape: null, color: null, style: null, cx: 32, cy: 32, rotation: 0 });
  });

  test('solid shapes have their color at the center; the background is white', async () => {
    const specs: SampleSpec[] = [];
    for (let i = 0; specs.length < 140; i++) specs.push(specAt(21, i, { style: 'solid', shape: SHAPES[i % SHAPES.length] }));
    const imgs = await renderAll(specs);
    specs.forEach((s, i) => {
      const c = px(imgs[i].rgb, Math.floor(s.cx), Math.floor(s.cy));
      expect({ shape: s.shape, near: near(c, s.rgb!, 2) }).toEqual({ shape: s.shape, near: true });
      expect(near(c, COLORS[s.color!], 14)).toBe(true);
    });
    const all = await renderAll(specsFor(200, 22).filter((s) => s.kind !== 'poster'));
    for (const r of all) {
      for (let k = 0; k < S; k++) {
        expect(isWhite(px(r.rgb, k, 0), 255) && isWhite(px(r.rgb, k, 63), 255)).toBe(true);
        expect(isWhite(px(r.rgb, 0, k), 255) && isWhite(px(r.rgb, 63, k), 255)).toBe(true);
      }
    }
  });

  test('Sunny is a yellow face with 8 rays', async () => {
    const specs = Array.from({ length: 40 }, (_, i) => specAt(31, i, { kind: 'sunny' }));
    const imgs = await renderAll(specs);
    specs.forEach((s, i) => {
      expect(s).toMatchObject({ kind: 'sunny', shape: 'face', color: 'yellow', style: 'solid' });
      expect(s.caption).toMatch(/Sunny/);
      const img = imgs[i].rgb;
      expect(near(px(img, Math.floor(s.cx), Math.floor(s.cy)), COLORS.yellow, 14)).toBe(true);
      const R = s.size / 2;
      const r = 0.8 * R + 0.6; // halfway along a ray
      for (let k = 0; k < 8; k++) {
        const on = ((s.rotation + 45 * k) * Math.PI) / 180;
        const off = on + (22.5 * Math.PI) / 180;
        const x = s.cx + r * Math.cos(on), y = s.cy + r * Math.sin(on);
        let minBlue = 255;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) minBlue = Math.min(minBlue, px(img, Math.floor(x) + dx, Math.floor(y) + dy)[2]);
        expect(minBlue).toBeLessThan(90); // some pixel is well inside the (yellow) ray
        expect(isWhite(px(img, Math.floor(s.cx + r * Math.cos(off)), Math.floor(s.cy + r * Math.sin(off))), 235)).toBe(true); // gap between rays
      }
      // The whole of Sunny, rays included, lies within its size.
      const box = inkBox(img);
      expect(Math.max(box.w, box.h)).toBeLessThanOrEqual(s.size + 2);
    });
  });

  test('sizes and positions: the drawn bounding box matches the spec', async () => {
    const specs = specsFor(300, 13).filter((s) => s.kind === 'shape');
    const imgs = await renderAll(specs);
    specs.forEach((s, i) => {
      const b = inkBox(imgs[i].rgb);
      const reach = 0.62 * s.size + 1.5; // farthest any shape reaches from its center at ≤ 15° rotation
      const where = { shape: s.shape, style: s.style };
      expect({ ...where, ok: b.x0 >= s.cx - reach && b.x1 + 1 <= s.cx + reach && b.y0 >= s.cy - reach && b.y1 + 1 <= s.cy + reach }).toEqual({ ...where, ok: true });
      const big = Math.max(b.w, b.h);
      expect(big).toBeGreaterThanOrEqual(0.9 * s.size - 2);
      expect(big).toBeLessThanOrEqual(1.23 * s.size + 2);
      if (s.shape === 'circle' || (s.shape === 'square' && s.rotation === 0)) {
        expect(Math.abs(b.w - s.size)).toBeLessThanOrEqual(2);
        expect(Math.abs(b.h - s.size)).toBeLessThanOrEqual(2);
      }
      if (s.shape === 'circle') {
        expect(Math.abs((b.x0 + b.x1 + 1) / 2 - s.cx)).toBeLessThanOrEqual(1);
        expect(Math.abs((b.y0 + b.y1 + 1) / 2 - s.cy)).toBeLessThanOrEqual(1);
      }
    });
  });

  test('shape geometry: equilateral triangle, 0.45 star, cross arms of size / 3, boxes of `size`', async () => {
    const box = (p: [number, number][]) => {
      const xs = p.map((q) => q[0]), ys = p.map((q) => q[1]);
      return { w: Math.max(...xs) - Math.min(...xs), h: Math.max(...ys) - Math.min(...ys), mx: (Math.max(...xs) + Math.min(...xs)) / 2, my: (Math.max(...ys) + Math.min(...ys)) / 2 };
    };
    for (const shape of ['square', 'triangle', 'star', 'heart', 'cross'] as const) {
      const b = box(shapePolygon(shape, 30)!);
      expect(Math.max(b.w, b.h)).toBeCloseTo(30, 6);
      expect(b.mx).toBeCloseTo(0, 6);
      expect(b.my).toBeCloseTo(0, 6);
    }
    const tri = shapePolygon('triangle', 30)!;
    const side = (i: number, j: number) => Math.hypot(tri[i][0] - tri[j][0], tri[i][1] - tri[j][1]);
    expect(side(0, 1)).toBeCloseTo(30, 6);
    expect(side(1, 2)).toBeCloseTo(30, 6);
    expect(side(2, 0)).toBeCloseTo(30, 6);
    expect(tri[0][1]).toBeLessThan(tri[1][1]); // apex up
    const star = shapePolygon('star', 30)!;
    const c = [star.reduce((a, p) => a + p[0], 0) / 10, star.reduce((a, p) => a + p[1], 0) / 10];
    const radii = star.map((p) => Math.hypot(p[0] - c[0], p[1] - c[1]));
    expect(radii[1] / radii[0]).toBeCloseTo(0.45, 6);
    expect(star[0][1]).toBeLessThan(c[1]); // a point up
    const cross = shapePolygon('cross', 30)!;
    expect(cross[1][0] - cross[0][0]).toBeCloseTo(10, 6);
    // And in pixels: the vertical arm of an upright solid cross is size / 3 wide.
    const { rgb } = await renderSample({ kind: 'shape', shape: 'cross', style: 'solid', rgb: [40, 80, 220], cx: 32, cy: 32, size: 36, rotation: 0 });
    let run = 0;
    for (let x = 0; x < S; x++) run += (255 - px(rgb, x, 18)[0]) / (255 - 40); // coverage of the red channel
    expect(run).toBeCloseTo(12, 0);
  });

  test('styles differ: solid is filled, outlined is white inside, striped and dotted are in between', async () => {
    const base = specAt(40, 0, { shape: 'square', color: 'blue' });
    const one = { ...base, cx: 32, cy: 32, size: 36, rotation: 0 };
    const fill: Record<string, number> = {};
    for (const style of STYLES) {
      const { rgb } = await renderSample({ ...one, style });
      let colored = 0;
      for (let y = 16; y < 48; y++) for (let x = 16; x < 48; x++) if (px(rgb, x, y)[2] > 150 && px(rgb, x, y)[0] < 150) colored++;
      fill[style] = colored / (32 * 32);
    }
    expect(fill.solid).toBeGreaterThan(0.95);
    expect(fill.outlined).toBeLessThan(0.2);
    for (const s of ['striped', 'dotted']) {
      expect(fill[s]).toBeGreaterThan(0.15);
      expect(fill[s]).toBeLessThan(0.75);
    }
  });
});

describe('datasets', () => {
  test('same seed → byte-identical folders; another seed → different; the records re-render the files', async () => {
    const a = path.join(dir, 'a'), b = path.join(dir, 'b'), c = path.join(dir, 'c');
    const progress: number[] = [];
    const ra = await renderDataset({ n: 40, seed: 5, outDir: a, concurrency: 16, onProgress: (p) => progress.push(p.done) });
    await renderDataset({ n: 40, seed: 5, outDir: b });
    await renderDataset({ n: 40, seed: 6, outDir: c });
    expect(ra.counts.shape + ra.counts.sunny + ra.counts.poster).toBe(40);
    expect(progress).toEqual([16, 32, 40]);
    const files = fs.readdirSync(a).sort();
    expect(files.length).toBe(42);
    expect(files).toContain('000000.png');
    expect(files).toContain('000039.png');
    expect(files).toContain('captions.jsonl');
    expect(files).toContain('world.json');
    expect(fs.readdirSync(b).sort()).toEqual(files);
    for (const f of files) expect(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f)))).toBe(true);
    expect(fs.readFileSync(path.join(a, 'captions.jsonl')).equals(fs.readFileSync(path.join(c, 'captions.jsonl')))).toBe(false);
    const differing = files.filter((f) => f.endsWith('.png') && !fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(c, f))));
    expect(differing.length).toBeGreaterThan(30);

    const recs = await readCaptions(a);
    expect(recs.length).toBe(40);
    for (const [i, r] of recs.entries()) {
      expect(r.file).toBe(`${String(i).padStart(6, '0')}.png`);
      for (const k of ['caption', 'kind', 'shape', 'color', 'style', 'cx', 'cy', 'size', 'rotation']) expect(r).toHaveProperty(k);
    }
    for (const r of recs.slice(0, 10)) expect((await renderSample(r)).png.equals(fs.readFileSync(path.join(a, r.file)))).toBe(true);
  });

  test('the in-memory batch holds the same pixels, [n, 64, 64, 3]; streams are prefix-stable', async () => {
    const batch = await renderBatch({ n: 12, seed: 5 });
    expect(batch.shape).toEqual([12, 64, 64, 3]);
    expect(batch.images.length).toBe(12 * 64 * 64 * 3);
    const dsBatch = await renderDataset({ n: 12, seed: 5 });
    expect(Buffer.from(dsBatch.images).equals(Buffer.from(batch.images))).toBe(true);
    const folder = path.join(dir, 'batch-check');
    await renderDataset({ n: 12, seed: 5, outDir: folder });
    for (let i = 0; i < 12; i++) {
      const { data } = await sharp(path.join(folder, `${String(i).padStart(6, '0')}.png`)).raw().toBuffer({ resolveWithObject: true });
      expect(data.equals(Buffer.from(batch.images.subarray(i * 12288, (i + 1) * 12288)))).toBe(true);
    }
    const tail = await renderBatch({ n: 4, seed: 5, start: 8 });
    expect(tail.specs).toEqual(batch.specs.slice(8));
    expect(Buffer.from(tail.images).equals(Buffer.from(batch.images.subarray(8 * 12288)))).toBe(true);
  });

  test('a failed or cancelled write leaves no output folder and no temporary folder', async () => {
    const parent = path.join(dir, 'fail');
    fs.mkdirSync(parent);
    const out = path.join(parent, 'ds');
    await expect(
      renderDataset({
        n: 100, seed: 1, outDir: out, concurrency: 10,
        onProgress: (p) => {
          if (p.done >= 30) throw new Error('disk on fire');
        },
      }),
    ).rejects.toThrow('disk on fire');
    expect(fs.readdirSync(parent)).toEqual([]);

    const ac = new AbortController();
    await expectCode(
      renderDataset({ n: 100, seed: 1, outDir: out, concurrency: 10, signal: ac.signal, onProgress: (p) => p.done >= 20 && ac.abort() }),
      'LETHE_CANCELLED',
    );
    expect(fs.readdirSync(parent)).toEqual([]);
  });

  test('an existing folder is kept unless overwrite', async () => {
    const out = path.join(dir, 'exists');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep.txt'), 'x');
    await expectCode(renderDataset({ n: 3, seed: 1, outDir: out }), 'LETHE_BAD_ARGUMENT');
    expect(fs.readdirSync(out)).toEqual(['keep.txt']);
    await renderDataset({ n: 3, seed: 1, outDir: out, overwrite: true });
    expect(fs.readdirSync(out).sort()).toEqual(['000000.png', '000001.png', '000002.png', 'captions.jsonl', 'world.json']);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});

describe('lethe world render', () => {
  test('renders a folder and reports JSON', async () => {
    const out = path.join(dir, 'cli');
    const chunks: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => (chunks.push(String(c)), true));
    try {
      await yargs(['world', 'render', '--n', '7', '--seed', '3', '--out', out, '--json']).command(worldCli).strict().parseAsync();
    } finally {
      spy.mockRestore();
    }
    const j = JSON.parse(chunks.join(''));
    expect(j).toMatchObject({ n: 7, seed: 3, outDir: out });
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.png')).length).toBe(7);
    const recs = await readCaptions(out);
    expect(recs.map((r) => r.caption)).toEqual(specsFor(7, 3).map((s) => s.caption));
  });
});
