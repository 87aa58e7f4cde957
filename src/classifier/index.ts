/**
 * The shapes world's classifier (docs/architecture.md, "Evaluation"): the judge of generated images. Heads: shape (the
 * seven shapes and "sunny"), color, style, and poster-or-not. It ships with the bundled model in
 * classifier/ and must be >= 98% accurate per head on fresh renders before it judges anything.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';
import { runNativeJob, type RunOptions } from '../job';
import { DEFAULT_MODEL_DIR } from '../models';
import { native } from '../native';
import type { AnyTensor, Tensor } from '../tensor';
import { COLOR_NAMES, SHAPES, STYLES, type ColorName, type Style } from '../world/attributes';
import { renderBatch } from '../world/dataset';
import type { SampleSpec } from '../world/render';

export const SHAPE_LABELS = [...SHAPES, 'sunny'] as const;
export type ShapeLabel = (typeof SHAPE_LABELS)[number];

export interface Judgement {
  shape: ShapeLabel;
  color: ColorName;
  style: Style;
  poster: boolean;
  confidence: { shape: number; color: number; style: number; poster: number };
}

export const CLASSIFIER_CONFIG = {
  _class_name: 'LetheShapesClassifier',
  image_size: 64,
  channels: [32, 64, 128, 128],
  num_shapes: SHAPE_LABELS.length,
  num_colors: COLOR_NAMES.length,
  num_styles: STYLES.length,
  labels: { shape: SHAPE_LABELS, color: COLOR_NAMES, style: STYLES, poster: ['no', 'yes'] },
};

type NativeClassifier = {
  trainClassifier(o: object): Promise<number>;
  classify(o: object): Promise<{ shape: Tensor; color: Tensor; style: Tensor; poster: Tensor }>;
};
const nat = () => native() as unknown as NativeClassifier;

export function defaultClassifierDir(): string {
  return path.join(DEFAULT_MODEL_DIR, 'classifier');
}

/** Labels [n, 4] (shape, color, style, poster) of rendered samples; -1 where a head does not apply. */
export function labelsOf(specs: SampleSpec[]): Tensor<'int64'> {
  const data = new BigInt64Array(specs.length * 4);
  specs.forEach((s, i) => {
    const poster = s.kind === 'poster';
    const shape = s.kind === 'sunny' ? SHAPE_LABELS.indexOf('sunny') : poster ? -1 : SHAPE_LABELS.indexOf(s.shape as ShapeLabel);
    const color = poster ? -1 : COLOR_NAMES.indexOf(s.color as ColorName);
    const style = poster ? -1 : STYLES.indexOf(s.style as Style);
    data.set([BigInt(shape), BigInt(color), BigInt(style), BigInt(poster ? 1 : 0)], i * 4);
  });
  return { dtype: 'int64', shape: [specs.length, 4], data };
}

function argmax(p: Float32Array, row: number, width: number): [number, number] {
  let best = 0;
  for (let j = 1; j < width; j++) if (p[row * width + j] > p[row * width + best]) best = j;
  return [best, p[row * width + best]];
}

/** Judges images: float [n, 3, 64, 64] in [0, 1] (as Pipeline.generate returns) or uint8 [n, 64, 64, 3]. */
export async function classify(images: AnyTensor, options: RunOptions & { dir?: string } = {}): Promise<Judgement[]> {
  const dir = options.dir ?? defaultClassifierDir();
  if (!fs.existsSync(path.join(dir, 'config.json')))
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${dir}: no classifier here (it ships with the bundled model; train it with \`npm run train-default\`)`);
  const r = await runNativeJob((o) => nat().classify({ ...o, dir, images }), options);
  const n = r.shape.shape[0];
  const out: Judgement[] = [];
  for (let i = 0; i < n; i++) {
    const [s, sp] = argmax(r.shape.data, i, SHAPE_LABELS.length);
    const [c, cp] = argmax(r.color.data, i, COLOR_NAMES.length);
    const [st, stp] = argmax(r.style.data, i, STYLES.length);
    const [p, pp] = argmax(r.poster.data, i, 2);
    out.push({ shape: SHAPE_LABELS[s], color: COLOR_NAMES[c], style: STYLES[st], poster: p === 1, confidence: { shape: sp, color: cp, style: stp, poster: pp } });
  }
  return out;
}

export interface ClassifierAccuracy {
  n: number;
  shape: number;
  color: number;
  style: number;
  poster: number;
}

/** Per-head accuracy on freshly rendered images (heads scored only where they apply). */
export async function classifierAccuracy(dir: string, n: number, seed: number, options: RunOptions = {}): Promise<ClassifierAccuracy> {
  const batch = await renderBatch({ n, seed, posterFraction: 0.05, sunnyFraction: 0.1, signal: options.signal });
  const judged = await classify({ dtype: 'uint8', shape: batch.shape, data: batch.images }, { ...options, dir });
  const hit = { shape: [0, 0], color: [0, 0], style: [0, 0], poster: [0, 0] };
  batch.specs.forEach((s, i) => {
    const j = judged[i];
    const poster = s.kind === 'poster';
    hit.poster[0] += Number(j.poster === poster);
    hit.poster[1]++;
    if (poster) return;
    hit.shape[0] += Number(j.shape === (s.kind === 'sunny' ? 'sunny' : s.shape));
    hit.shape[1]++;
    hit.color[0] += Number(j.color === s.color);
    hit.color[1]++;
    hit.style[0] += Number(j.style === s.style);
    hit.style[1]++;
  });
  const rate = (h: number[]) => h[0] / h[1];
  return { n, shape: rate(hit.shape), color: rate(hit.color), style: rate(hit.style), poster: rate(hit.poster) };
}

export interface TrainClassifierOptions extends RunOptions {
  dir: string;
  work: string;
  images?: number;
  steps?: number;
  batch?: number;
  seed?: number;
}

/** Renders a labelled training set and trains the classifier natively into `dir` (resumable). */
export async function trainClassifier(o: TrainClassifierOptions): Promise<ClassifierAccuracy> {
  fs.mkdirSync(o.dir, { recursive: true });
  fs.mkdirSync(o.work, { recursive: true });
  fs.writeFileSync(path.join(o.dir, 'config.json'), JSON.stringify(CLASSIFIER_CONFIG, null, 2) + '\n');
  const seed = o.seed ?? 11;
  const batch = await renderBatch({ n: o.images ?? 20000, seed, posterFraction: 0.05, sunnyFraction: 0.1, signal: o.signal });
  await runNativeJob(
    (opts) =>
      nat().trainClassifier({
        ...opts,
        dir: o.dir,
        images: { dtype: 'uint8', shape: batch.shape, data: batch.images },
        labels: labelsOf(batch.specs),
        steps: o.steps ?? 1500,
        batch: o.batch ?? 64,
        lr: 2e-3,
        seed,
        checkpoint: path.join(o.work, 'classifier.ckpt.safetensors'),
      }),
    o,
  );
  // Measured on renders from another seed than training's.
  return classifierAccuracy(o.dir, 2000, seed + 1000, o);
}
