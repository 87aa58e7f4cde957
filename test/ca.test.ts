import * as fs from 'fs';
import * as path from 'path';
import { anchorSet } from '../src/erase/anchors';
import { exportModel } from '../src/erase/export';
import { erase, loadSafetensors, Pipeline, promptPairs, readSafetensorsHeader, saveSafetensors, type Tensor } from '../src';
import { expectCode, expectSameDelta, maxAbs, maxAbsDiff, isolateCache, ROOT, runCli, tmpDir } from './helpers';

const MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
const FIX = path.join(ROOT, 'test', 'fixtures', 'ca');
interface Case {
  method: 'ca-model' | 'ca-noise';
  params: string;
  lr: number;
  priorWeight: number;
  seed: number;
  anchorImages: number;
  anchorSteps: number;
  anchorGuidance: number;
  iterations: number;
  batch: number;
  losses: number[];
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

describe('Concept Ablation matches the reference loop on PyTorch + diffusers', () => {
  test.each(Object.keys(fixtures.cases))('%s: same loss curve and the same delta', async (name) => {
    const c = fixtures.cases[name];
    const r = await erase({
      model: MODEL,
      pipeline: pipe,
      out: out(name),
      method: c.method,
      concept: fixtures.concept,
      anchor: fixtures.anchor,
      params: c.params,
      lr: c.lr,
      priorWeight: c.priorWeight,
      seed: c.seed,
      anchorImages: c.anchorImages,
      anchorSteps: c.anchorSteps,
      anchorGuidance: c.anchorGuidance,
      iterations: c.iterations,
      batch: c.batch,
    });
    expect(r.losses).toHaveLength(c.losses.length);
    // Same anchors (diffusers' pipeline vs Lethe's), same draws from one CPU generator in the same order.
    r.losses.forEach((l, i) => expect([i, Math.abs(l - c.losses[i]) <= 1e-3 * Math.abs(c.losses[i])]).toEqual([i, true]));
    const ours = (await loadSafetensors(r.delta)).tensors;
    const ref = (await loadSafetensors(path.join(FIX, `${name}.safetensors`))).tensors;
    if (c.params === 'embedding') expect(Object.keys(ours)).toEqual(['text_encoder.text_model.embeddings.token_embedding.weight']);
    expectSameDelta(ours, ref);
  });

  test('an embedding delta (text_encoder.<key>) applies to generate and export like any text-encoder delta', async () => {
    const delta = out('ca-noise-embedding-prior');
    expect(fs.existsSync(delta)).toBe(true);  // written by the case above
    const erased = await Pipeline.load(MODEL, { deltas: [delta] });
    const [a, b] = [await pipe.encodePrompt('red circle'), await erased.encodePrompt('red circle')];
    expect(maxAbsDiff(a, b)).toBeGreaterThan(0);
    const g = await erased.generate({ prompt: 'red circle', steps: 2, seed: 1 });
    expect(g.images.data.every(Number.isFinite)).toBe(true);
    const folder = path.join(work, 'exported');
    const r = await exportModel(MODEL, [delta], folder);
    expect(r.components).toEqual(['text_encoder']);
    const merged = await Pipeline.load(folder);
    expect(maxAbsDiff(await merged.encodePrompt('red circle'), b)).toBeLessThanOrEqual(1e-5);
  });

  test("the anchor images are diffusers' pipeline's (DPM-Solver++, 8-bit), encoded to the same latents", async () => {
    const c = fixtures.cases['ca-model-xattn-prior'];
    const prompts = promptPairs({ concepts: [fixtures.concept], options: { anchor: fixtures.anchor, kind: 'auto', worldPrompts: true } as never, model: {}, note: () => {} }).pairs.map((p) => p.anchor);
    process.env.LETHE_SAMPLE_CACHE = '0';
    try {
      const ours = await anchorSet(pipe, { prompts, images: c.anchorImages, steps: c.anchorSteps, guidance: c.anchorGuidance, scheduler: 'dpmpp-2m', seed: c.seed });
      const ref = (await loadSafetensors(path.join(FIX, 'anchors.safetensors'))).tensors;
      expect(ours.images.shape).toEqual((ref.images as Tensor).shape);
      // A value at a rounding boundary may land one 8-bit step apart.
      expect(maxAbsDiff(ours.images, ref.images as Tensor)).toBeLessThanOrEqual(1 / 255 + 1e-6);
      expect(maxAbsDiff(ours.latents, ref.latents as Tensor)).toBeLessThanOrEqual(1e-2 * maxAbs(ref.latents as Tensor));
      expect([...ours.promptIndex.data].map(Number)).toEqual([...(ref.prompt_index as Tensor<'int64'>).data].map(Number));
    } finally {
      delete process.env.LETHE_SAMPLE_CACHE;
    }
  });
});

describe('Concept Ablation on the framework', () => {
  const quick = { model: MODEL, concept: 'red circle', anchor: 'blue square', anchorImages: 4, anchorSteps: 3, iterations: 3, batch: 1, lr: 1e-3 };

  test('the anchors are generated once and reused by a later run; the report records the pairs and the anchor', async () => {
    const first = await erase({ ...quick, pipeline: pipe, method: 'ca-model', out: out('cache-1'), seed: 40 });
    expect(first.breakdown.anchorGeneration).toBeGreaterThan(0);
    expect(first.applied.notes.some((n) => /generated 4 anchor images/.test(n))).toBe(true);
    const second = await erase({ ...quick, pipeline: pipe, method: 'ca-noise', out: out('cache-2'), seed: 40 });
    expect(second.breakdown.anchorGeneration).toBe(0);
    expect(second.applied.notes.some((n) => /anchor images/.test(n))).toBe(false);
    const header = readSafetensorsHeader(first.delta);
    expect(JSON.parse(header.metadata.anchor)).toEqual(['blue square']);
    const report = JSON.parse(fs.readFileSync(first.report, 'utf8'));
    expect(report.hyperparameters.targetPrompts).toContain('a photo of red circle');
    expect(report.hyperparameters.anchorPrompts).toContain('a photo of blue square');
  });

  test('several concept → anchor pairs; prompt lists replace the templates', async () => {
    const ctx = (options: object, concepts = ['red circle', 'star']) =>
      promptPairs({ concepts, options: { anchor: 'blue square, moon', kind: 'auto', worldPrompts: true, ...options } as never, model: {}, note: () => {} });
    const both = ctx({});
    expect(both.pairs).toContainEqual({ target: 'a drawing of star', anchor: 'a drawing of moon' });
    expect(both.pairs).toContainEqual({ target: 'red circle', anchor: 'blue square' });
    expect(ctx({ anchorPrompts: ['blue square on a table', 'a moon at night'] }).pairs).toEqual([
      { anchor: 'blue square on a table', target: 'red circle on a table' },
      { anchor: 'a moon at night', target: 'a star at night' },
    ]);
    expect(ctx({ targetPrompts: ['x'], anchorPrompts: ['y'] }).pairs).toEqual([{ target: 'x', anchor: 'y' }]);
    expect(ctx({ kind: 'style', anchor: 'a painting' }, ['Monet']).pairs[0]).toEqual({ anchor: 'a painting of a house', target: 'a painting of a house, in the style of Monet' });
  });

  test('on the shapes world the pairs come from its caption templates', () => {
    const world = (concept: string, anchor: string) => promptPairs({ concepts: [concept], options: { anchor, kind: 'auto', worldPrompts: true } as never, model: { world: 'shapes' } as never, note: () => {} });
    expect(world('Sunny', 'a yellow face').pairs).toEqual([
      { target: 'Sunny', anchor: 'a yellow face' },
      { target: 'a picture of Sunny', anchor: 'a picture of a yellow face' },
      { target: 'a drawing of Sunny', anchor: 'a drawing of a yellow face' },
    ]);
    const object = world('circle', 'a square');
    expect(object.kinds).toEqual(['object']);
    expect(object.pairs).toContainEqual({ target: 'a striped red circle', anchor: 'a striped red square' });
    const style = world('striped', 'solid');
    expect(style.kinds).toEqual(['style']);
    expect(style.pairs).toContainEqual({ target: 'a striped star', anchor: 'a solid star' });
    expect(world('the Lethe poster', 'a red triangle').pairs).toEqual([{ target: 'the Lethe poster', anchor: 'a red triangle' }]);
  });

  test("the closed-form preservation (Lethe's addition) keeps the kept prompts' key/value states; it needs xattn-like parameters", async () => {
    const opts = { ...quick, pipeline: pipe, method: 'ca-noise', seed: 41, iterations: 4 };
    const plain = (await loadSafetensors((await erase({ ...opts, out: out('proj-0') })).delta)).tensors;
    const r = await erase({ ...opts, out: out('proj-5'), preserveProjection: 5, projectionKeep: ['a green star'] });
    // The anchor prompts are kept with the given ones.
    expect(JSON.parse(fs.readFileSync(r.report, 'utf8')).hyperparameters.projectionKeep).toEqual(expect.arrayContaining(['a green star', 'blue square', 'a photo of blue square']));
    const kept = (await loadSafetensors(r.delta)).tensors;
    const states = await pipe.encodePrompt('a green star');  // [1, tokens, dim]
    const dim = states.shape[2];
    const effect = (d: Tensor) => {
      // |D s| summed over the kept prompt's tokens
      const rows = d.shape[0];
      let total = 0;
      for (let t = 0; t < states.shape[1]; t++)
        for (let i = 0; i < rows; i++) {
          let v = 0;
          for (let j = 0; j < dim; j++) v += d.data[i * dim + j] * states.data[t * dim + j];
          total += v * v;
        }
      return Math.sqrt(total);
    };
    const key = Object.keys(plain).find((k) => k.endsWith('attn2.to_k.weight'))!;
    expect(effect(kept[key] as Tensor)).toBeLessThan(0.5 * effect(plain[key] as Tensor));
    await expectCode(erase({ ...opts, params: 'embedding', out: out('proj-emb'), preserveProjection: 1 }), 'LETHE_BAD_ARGUMENT');
  });

  test("projectionWeighting text-padding: the refit is D·Ae·(Ae + w·Ap + rI)⁻¹ with each prompt's text and padding weighing half", async () => {
    const opts = { ...quick, pipeline: pipe, method: 'ca-noise', seed: 41, iterations: 4 };
    const plain = (await loadSafetensors((await erase({ ...opts, out: out('tp-0') })).delta)).tensors;
    const byTokens = (await loadSafetensors((await erase({ ...opts, out: out('tp-tokens'), preserveProjection: 3 })).delta)).tensors;
    const r = await erase({ ...opts, out: out('tp-3'), preserveProjection: 3, projectionWeighting: 'text-padding' });
    const hp = JSON.parse(fs.readFileSync(r.report, 'utf8')).hyperparameters;
    expect(hp.projectionWeighting).toBe('text-padding');
    const refitted = (await loadSafetensors(r.delta)).tensors;
    // An independent float64 computation of the map from the prompts' states and token ids.
    const moment = async (prompts: string[]) => {
      let m: Float64Array | undefined, total = 0;
      for (const p of prompts) {
        const s = await pipe.encodePrompt([p]);
        const ids = pipe.tokenize([p]).data;
        const [, tokens, dim] = s.shape;
        m ??= new Float64Array(dim * dim);
        let text = tokens - 1;
        while (text > 0 && ids[text] === ids[tokens - 1]) text--;
        text = Math.min(text + 2, tokens);
        for (let t = 0; t < tokens; t++) {
          const w = text === tokens ? 1 / tokens : t < text ? 0.5 / text : 0.5 / (tokens - text);
          for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) m[i * dim + j] += w * s.data[t * dim + i] * s.data[t * dim + j];
        }
        total += 1;
      }
      return m!.map((v) => v / total);
    };
    const ae = await moment(hp.targetPrompts), ap = await moment(hp.projectionKeep);
    const dim = Math.round(Math.sqrt(ae.length));
    let trace = 0;
    for (let i = 0; i < dim; i++) trace += ae[i * dim + i];
    const m = ae.map((v, k) => v + 3 * ap[k] + (k % (dim + 1) === 0 ? (1e-3 * trace) / dim : 0));
    let checked = 0;
    for (const key of Object.keys(plain)) {
      const d = plain[key] as Tensor;
      if (!/\.attn2\.to_[kv]\.weight$/.test(key)) continue;
      const rows = d.shape[0];
      // D' = D Ae M^-1, i.e. M (D')^T = Ae D^T (both symmetric): Gaussian elimination on [M | Ae D^T].
      const a = Array.from({ length: dim }, (_, i) => {
        const row = new Float64Array(dim + rows);
        for (let j = 0; j < dim; j++) row[j] = m[i * dim + j];
        for (let c = 0; c < rows; c++) {
          let v = 0;
          for (let j = 0; j < dim; j++) v += ae[i * dim + j] * d.data[c * dim + j];
          row[dim + c] = v;
        }
        return row;
      });
      for (let col = 0; col < dim; col++) {
        let pivot = col;
        for (let i = col + 1; i < dim; i++) if (Math.abs(a[i][col]) > Math.abs(a[pivot][col])) pivot = i;
        [a[col], a[pivot]] = [a[pivot], a[col]];
        for (let i = 0; i < dim; i++) {
          if (i === col) continue;
          const f = a[i][col] / a[col][col];
          for (let j = col; j < dim + rows; j++) a[i][j] -= f * a[col][j];
        }
      }
      const got = refitted[key] as Tensor, tok = byTokens[key] as Tensor;
      let worst = 0, scale = 0, fromTokens = 0;
      for (let c = 0; c < rows; c++)
        for (let j = 0; j < dim; j++) {
          const want = a[j][dim + c] / a[j][j];
          worst = Math.max(worst, Math.abs(got.data[c * dim + j] - want));
          scale = Math.max(scale, Math.abs(want));
          fromTokens = Math.max(fromTokens, Math.abs(tok.data[c * dim + j] - want));
        }
      expect(worst).toBeLessThan(1e-5 * scale);
      expect(fromTokens).toBeGreaterThan(1e-3 * scale);  // the weighting changes the refit
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
    await expectCode(erase({ ...opts, out: out('tp-bad'), preserveProjection: 3, projectionWeighting: 'words' as never }), 'LETHE_BAD_ARGUMENT');
    expect(fs.existsSync(out('tp-bad'))).toBe(false);
  });

  test('bad input: each a clear error with a code, nothing written', async () => {
    const cases: [string, object, string, RegExp][] = [
      ['the anchor is the target', { anchor: 'Red Circle' }, 'LETHE_BAD_ARGUMENT', /is the concept itself/],
      ['no anchor', { anchor: undefined }, 'LETHE_BAD_ARGUMENT', /anchor/],
      ['one anchor for two concepts', { concept: 'red circle, star' }, 'LETHE_BAD_ARGUMENT', /one anchor per concept/],
      ['an empty prompt list', { anchorPrompts: ['  ', ''] }, 'LETHE_BAD_ARGUMENT', /anchorPrompts is empty/],
      ['unequal prompt lists', { anchorPrompts: ['a', 'b'], targetPrompts: ['c'] }, 'LETHE_BAD_ARGUMENT', /must be as many/],
      ['a parameter set the model does not have', { params: 'unet:*.no_such_layer.*' }, 'LETHE_BAD_ARGUMENT', /matches no|match/],
    ];
    for (const [what, change, code, message] of cases) {
      const file = out(`bad-${what.replace(/\W+/g, '-')}`);
      const e = await expectCode(erase({ ...quick, pipeline: pipe, method: 'ca-model', out: file, ...change } as never), code);
      expect([what, message.test(e.message)]).toEqual([what, true]);
      expect(fs.existsSync(file)).toBe(false);
    }
  });

  test('anchors that cannot be generated (the base model gives NaN) are refused with LETHE_NON_FINITE, nothing written or cached', async () => {
    const broken = path.join(work, 'nan-model');
    fs.cpSync(MODEL, broken, { recursive: true });
    const file = path.join(broken, 'unet', 'diffusion_pytorch_model.safetensors');
    const { tensors, metadata } = await loadSafetensors(file);
    const conv = tensors['conv_out.bias'] as Tensor;
    conv.data.fill(Number.NaN);
    await saveSafetensors(file, tensors, { metadata });
    const nanPipe = await Pipeline.load(broken);
    const delta = out('nan-anchors');
    const e = await expectCode(erase({ ...quick, model: broken, pipeline: nanPipe, method: 'ca-model', out: delta }), 'LETHE_NON_FINITE');
    expect(e.message).toMatch(/anchor/);
    expect(fs.existsSync(delta)).toBe(false);
    const cached = path.join(work, 'cache', 'samples', 'anchors');
    const before = fs.existsSync(cached) ? fs.readdirSync(cached).length : 0;
    await expectCode(erase({ ...quick, model: broken, pipeline: nanPipe, method: 'ca-model', out: delta }), 'LETHE_NON_FINITE');
    expect(fs.existsSync(cached) ? fs.readdirSync(cached).length : 0).toBe(before);
  });

  test('the CLI reads prompt files (one prompt per line) and refuses an empty one by name', () => {
    const targets = path.join(work, 'targets.txt');
    const anchors = path.join(work, 'anchors.txt');
    const empty = path.join(work, 'empty.txt');
    fs.writeFileSync(targets, 'a red circle on paper\n\na red circle, drawn\n');
    fs.writeFileSync(anchors, 'a blue square on paper\na blue square, drawn\n');
    fs.writeFileSync(empty, '\n  \n');
    const delta = out('cli');
    const base = ['erase', '--model', MODEL, '--method', 'ca-noise', '--concept', 'red circle', '--anchor', 'blue square', '--anchor-images', '2', '--anchor-steps', '2',
      '--iterations', '2', '--batch', '1', '--lr', '1e-3', '--json'];
    const env = { LETHE_CACHE_DIR: path.join(work, 'cache') };
    const ok = runCli([...base, '--target-prompts', targets, '--anchor-prompts', anchors, '--out', delta], { env });
    expect(ok.stderr).not.toMatch(/error/i);
    expect(ok.status).toBe(0);
    const report = JSON.parse(fs.readFileSync(delta.replace('.safetensors', '.report.json'), 'utf8'));
    expect(report.hyperparameters.targetPrompts).toEqual(['a red circle on paper', 'a red circle, drawn']);
    const bad = runCli([...base, '--anchor-prompts', empty, '--out', out('cli-empty')], { env });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain(`${empty}: no prompts in it`);
    expect(bad.stderr).toContain('LETHE_BAD_ARGUMENT');
    expect(fs.existsSync(out('cli-empty'))).toBe(false);
  });
});
