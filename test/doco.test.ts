import * as fs from 'fs';
import * as path from 'path';
import { erase, loadSafetensors, Pipeline, readSafetensorsHeader, type Tensor } from '../src';
import { readDeltaInfo } from '../src/erase/delta';
import { native } from '../src/native';
import { expectCode, expectSameDelta, maxAbs, isolateCache, ROOT, tmpDir } from './helpers';

const MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
const FIX = path.join(ROOT, 'test', 'fixtures', 'doco');
interface Case {
  params: string;
  lr: number;
  dLr: number;
  warmup: number;
  surgery: boolean;
  surgeryLambda: number;
  seed: number;
  anchorImages: number;
  anchorSteps: number;
  anchorGuidance: number;
  iterations: number;
  batch: number;
  terms: Record<string, (number | null)[]>;
}
const fixtures = JSON.parse(fs.readFileSync(path.join(FIX, 'cases.json'), 'utf8')) as { concept: string; anchor: string; cases: Record<string, Case> };
const work = tmpDir();
isolateCache(path.join(work, 'cache'));
let pipe: Pipeline;
beforeAll(async () => {
  pipe = await Pipeline.load(MODEL);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const out = (name: string) => path.join(work, `${name}.safetensors`);
const run = (c: Omit<Case, 'terms'>, file: string, extra: object = {}) =>
  erase({
    model: MODEL,
    pipeline: pipe,
    out: file,
    method: 'doco',
    concept: fixtures.concept,
    anchor: fixtures.anchor,
    params: c.params,
    lr: c.lr,
    dLr: c.dLr,
    warmup: c.warmup,
    surgery: c.surgery,
    surgeryLambda: c.surgeryLambda,
    seed: c.seed,
    anchorImages: c.anchorImages,
    anchorSteps: c.anchorSteps,
    anchorGuidance: c.anchorGuidance,
    iterations: c.iterations,
    batch: c.batch,
    ...extra,
  });

describe('DoCo matches the reference loop on PyTorch + diffusers', () => {
  test.each(Object.keys(fixtures.cases))('%s: the same three loss curves and the same delta', async (name) => {
    const c = fixtures.cases[name];
    const r = await run(c, out(name));
    for (const term of ['adversarial', 'preservation', 'discriminator']) {
      const ref = c.terms[term];
      const ours = r.terms[term];
      expect([term, ours.length]).toEqual([term, ref.length]);
      ref.forEach((v, i) => {
        // null in the reference / NaN here: the warm-up, when only the discriminator trains.
        if (v === null) expect([term, i, Number.isNaN(ours[i])]).toEqual([term, i, true]);
        else expect([term, i, Math.abs(ours[i] - v) <= 1e-3 * Math.abs(v)]).toEqual([term, i, true]);
      });
    }
    const delta = (await loadSafetensors(r.delta)).tensors;
    // The discriminator is trained and checkpointed, never part of the delta.
    expect(Object.keys(delta).some((k) => /discriminator|aux\./.test(k))).toBe(false);
    expectSameDelta(delta, (await loadSafetensors(path.join(FIX, `${name}.safetensors`))).tensors);
  });
});

describe('DoCo on the framework', () => {
  const base = fixtures.cases['doco-xattn-surgery'];

  test('the warm-up trains only the discriminator: a run that ends inside it leaves the model as it was', async () => {
    const r = await run({ ...base, iterations: 3, warmup: 2 }, out('warmup-only'));
    expect(r.applied.notes.some((n) => /only the discriminator trains/.test(n))).toBe(true);
    const delta = (await loadSafetensors(r.delta)).tensors;
    expect(Object.keys(delta).length).toBeGreaterThan(0);
    for (const t of Object.values(delta)) expect(maxAbs(t as Tensor)).toBe(0);
    expect(r.terms.discriminator.every(Number.isFinite)).toBe(true);
    expect(r.terms.adversarial).toBeUndefined();  // never computed
  });

  test('surgery changes the update (lambda 0 is the adversarial gradient alone); the report and the delta record the settings', async () => {
    const a = await run(base, out('lambda-1'));
    const b = await run({ ...base, surgeryLambda: 0 }, out('lambda-0'));
    const da = (await loadSafetensors(a.delta)).tensors;
    const db = (await loadSafetensors(b.delta)).tensors;
    const key = Object.keys(da)[0];
    expect((da[key] as Tensor).data).not.toEqual((db[key] as Tensor).data);
    // The target prompts are what it trained on (the evaluation's generalization rows read them).
    expect(readDeltaInfo(a.delta).trainedPrompts).toEqual(expect.arrayContaining(['red circle', 'a photo of red circle']));
    const report = JSON.parse(fs.readFileSync(a.report, 'utf8'));
    expect(report.hyperparameters).toMatchObject({ dLr: base.dLr, warmup: base.warmup, surgery: true, surgeryLambda: 1, discriminatorBlocks: 0 });
    expect(JSON.parse(readSafetensorsHeader(a.delta).metadata.anchor)).toEqual([fixtures.anchor]);
  });

  test("dLr 0 takes the reference's by kind (1e-4 for an object), and says so", async () => {
    const r = await run({ ...base, iterations: 2, dLr: 0 }, out('dlr-auto'));
    expect(r.applied.notes.some((n) => /dLr 0.0001: the reference's discriminator lr for objects/.test(n))).toBe(true);
    expect(JSON.parse(fs.readFileSync(r.report, 'utf8')).hyperparameters.dLr).toBe(1e-4);
  });

  test("the closed-form preservation (Lethe's addition, as for Concept Ablation) refits the key/value deltas; it needs them", async () => {
    const p0 = await run(base, out('doco-proj-0'));
    const plain = (await loadSafetensors(p0.delta)).tensors;
    const r = await run(base, out('doco-proj-5'), { preserveProjection: 5, projectionKeep: ['a green star'] });
    expect(r.losses).toEqual(p0.losses);
    expect(JSON.parse(fs.readFileSync(r.report, 'utf8')).hyperparameters.projectionKeep).toEqual(expect.arrayContaining(['a green star', 'blue square']));
    const refit = (await loadSafetensors(r.delta)).tensors;
    const key = Object.keys(plain).find((k) => k.endsWith('attn2.to_k.weight'))!;
    // The same training (the refit runs after it), another delta.
    expect((refit[key] as Tensor).data).not.toEqual((plain[key] as Tensor).data);
    await expectCode(run({ ...base, params: 'embedding' }, out('doco-proj-emb'), { preserveProjection: 1 }), 'LETHE_BAD_ARGUMENT');
  });

  test('bad input: each a clear error with a code, nothing written', async () => {
    const cases: [string, object, string, RegExp][] = [
      ['a negative discriminator lr', { dLr: -1 }, 'LETHE_BAD_ARGUMENT', /dLr/],
      ['more discriminator blocks than the latent allows', { discriminatorBlocks: 4 }, 'LETHE_BAD_ARGUMENT', /leaves no patch/],
      ['a negative surgery lambda', { surgeryLambda: -1 }, 'LETHE_BAD_ARGUMENT', /surgeryLambda/],
      ['the anchor is the target', { anchor: 'Red Circle' }, 'LETHE_BAD_ARGUMENT', /is the concept itself/],
    ];
    for (const [what, change, code, message] of cases) {
      const file = out(`bad-${what.replace(/\W+/g, '-')}`);
      const e = await expectCode(run({ ...base, iterations: 2 }, file, change), code);
      expect([what, message.test(e.message)]).toEqual([what, true]);
      expect(fs.existsSync(file)).toBe(false);
    }
  });
});

describe("DoCo's gradient surgery (the reference's adjust_gradient) on hand-made gradients", () => {
  const surgery = (gu: number[], gp: number[], lambda = 1) =>
    [...(native() as unknown as { gradientSurgery(a: Tensor, b: Tensor, l: number): Tensor }).gradientSurgery(t(gu), t(gp), lambda).data];
  const t = (v: number[]): Tensor => ({ dtype: 'float32', shape: [v.length], data: Float32Array.from(v) });
  const close = (a: number[], b: number[]) => a.forEach((x, i) => expect(x).toBeCloseTo(b[i], 5));

  test('opposed: the cosine times the unit preservation direction is removed, scaled by lambda', () => {
    // g_u = (1, 0), g_p = (-1, 1): cos = -1/sqrt(2), unit g_p = (-1, 1)/sqrt(2) -> g_u - cos * unit = (1 - 0.5, 0.5).
    close(surgery([1, 0], [-1, 1]), [0.5, 0.5]);
    close(surgery([1, 0], [-1, 1], 2), [0, 1]);
    // Directly opposed, |g_u| = 3: cos = -1, the step removed is the unit vector, not the projection.
    close(surgery([3, 0], [-2, 0]), [2, 0]);
  });

  test('orthogonal or aligned: unchanged', () => {
    close(surgery([1, 0], [0, 5]), [1, 0]);
    close(surgery([1, 2], [2, 4]), [1, 2]);
    close(surgery([1, 2], [0.1, -0.01]), [1, 2]);
  });

  test('a zero preservation gradient leaves the update as it is', () => {
    close(surgery([1, -2], [0, 0]), [1, -2]);
  });
});
