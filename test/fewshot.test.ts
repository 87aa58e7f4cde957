/**
 * Few-shot text-encoder unlearning (src/erase/methods/fewshot.ts, native/erase/fewshot.cc): the
 * native loop against the reference loop on PyTorch + transformers + diffusers
 * (scripts/fewshot_reference.py, fixtures by scripts/make_fewshot_fixtures.py), the text
 * encoder's gradients against transformers', and what a text-encoder-only delta can do.
 */
import * as fs from 'fs';
import * as path from 'path';
import { erase, fewshotPrompts, loadSafetensors, Pipeline, readDeltaInfo, saveSafetensors, type Tensor } from '../src';
import { exportModel } from '../src/erase/export';
import { expectCode, expectSameDelta, maxAbs, maxAbsDiff, ROOT, runCli, tmpDir } from './helpers';

const MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
const OTHER_TEXT_ENCODER = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd2');
const FIX = path.join(ROOT, 'test', 'fixtures', 'fewshot');
const IMAGES = path.join(FIX, 'images');
interface Case {
  teParams: 'mlp-final-attn' | 'mlp' | 'attn' | 'all' | 'embedding';
  lr: number;
  epochs: number;
  batch: number;
  seed: number;
  zeroShot?: boolean;
  losses: number[];
}
const fixtures = JSON.parse(fs.readFileSync(path.join(FIX, 'cases.json'), 'utf8')) as { concept: string; cases: Record<string, Case> };
const work = tmpDir();
let pipe: Pipeline;
beforeAll(async () => {
  pipe = await Pipeline.load(MODEL);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const out = (name: string) => path.join(work, `${name}.safetensors`);

describe('few-shot unlearning matches the reference loop on PyTorch + transformers + diffusers', () => {
  test.each(Object.keys(fixtures.cases))('%s: same loss curve and the same delta', async (name) => {
    const c = fixtures.cases[name];
    const r = await erase({
      model: MODEL,
      pipeline: pipe,
      out: out(name),
      method: 'fewshot-te',
      concept: fixtures.concept,
      ...(c.zeroShot ? { zeroShot: true } : { images: IMAGES }),
      teParams: c.teParams,
      lr: c.lr,
      epochs: c.epochs,
      batch: c.batch,
      seed: c.seed,
    });
    // Epochs × batches: 3 images (or one zero-shot latent per batch item), the last batch smaller.
    expect(r.losses).toHaveLength(c.losses.length);
    r.losses.forEach((l, i) => expect([i, l < 0, Math.abs(l - c.losses[i]) <= 1e-3 * Math.abs(c.losses[i])]).toEqual([i, true, true]));
    const ours = (await loadSafetensors(r.delta)).tensors;
    const ref = (await loadSafetensors(path.join(FIX, `${name}.safetensors`))).tensors;
    expect(Object.keys(ours).every((k) => k.startsWith('text_encoder.'))).toBe(true);
    expectSameDelta(ours, ref);
  });

  test("the text encoder's gradients through the trained copy are transformers' (<= 1e-4 relative)", async () => {
    const f = (await loadSafetensors(path.join(FIX, 'te-gradients.safetensors'))).tensors as Record<string, Tensor>;
    const handle = (pipe as unknown as { nativeHandle: { textEncoderGradients(o: object): Promise<{ states: Tensor; grads: Record<string, Tensor> }> } }).nativeHandle;
    const r = await handle.textEncoderGradients({ ids: f.ids, weights: f.weights });
    expect(maxAbsDiff(r.states, f.states)).toBeLessThanOrEqual(1e-4 * maxAbs(f.states));
    const names = Object.keys(f).filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
    expect(Object.keys(r.grads).sort()).toEqual(names.sort());
    const largest = Math.max(...names.map((n) => maxAbs(f[`grad.${n}`])));
    for (const n of names) {
      const ref = f[`grad.${n}`];
      // The key projections' biases have no true gradient (a bias on every key adds the same score
      // to a row: softmax ignores it), so both sides hold float noise there: it must stay noise.
      if (maxAbs(ref) <= 1e-6 * largest) expect([n, maxAbs(r.grads[n]) <= 1e-5 * largest]).toEqual([n, true]);
      else expect([n, maxAbsDiff(r.grads[n], ref) <= 1e-4 * maxAbs(ref)]).toEqual([n, true]);
    }
  });
});

describe('few-shot unlearning on the framework', () => {
  test('the delta is keyed by the text encoder alone and records its images; it applies to any model with that text encoder', async () => {
    const r = await erase({ model: MODEL, pipeline: pipe, method: 'fewshot-te', concept: 'red circle', images: IMAGES, lr: 1e-3, out: out('portable') });
    expect(r.losses).toHaveLength(5 * 2);  // the reference's 5 epochs of 3 images in batches of 2
    const info = readDeltaInfo(r.delta);
    expect(info.components).toEqual(['text_encoder']);
    expect(Object.keys(info.baseFingerprints)).toEqual(['text_encoder']);
    const images = JSON.parse(info.metadata.images) as { file: string; sha256: string }[];
    expect(images.map((i) => i.file)).toEqual(['image-0.png', 'image-1.png', 'image-2.png']);
    expect(images.every((i) => /^[0-9a-f]{64}$/.test(i.sha256))).toBe(true);
    // The default set: every layer's mlp.fc1/fc2 and the last layer's self_attn (this encoder has 3 layers).
    expect(r.trainedTensors.filter((t) => t.includes('self_attn')).every((t) => t.includes('layers.2.self_attn'))).toBe(true);
    expect(r.trainedTensors.filter((t) => t.includes('.mlp.fc')).length).toBe(3 * 4);

    // A model with the same text encoder and another UNet (a video model, an inpainting variant).
    const variant = path.join(work, 'variant');
    fs.cpSync(MODEL, variant, { recursive: true });
    const unetFile = path.join(variant, 'unet', 'diffusion_pytorch_model.safetensors');
    const unet = await loadSafetensors(unetFile);
    const first = Object.keys(unet.tensors)[0];
    const t = unet.tensors[first] as Tensor;
    saveSafetensors(unetFile, { ...unet.tensors, [first]: { ...t, data: t.data.map((v) => v * 1.5 + 0.01) } }, unet.metadata);
    const erased = await Pipeline.load(variant, { deltas: [r.delta] });
    const base = await Pipeline.load(variant);
    expect(maxAbsDiff(await erased.encodePrompt('red circle'), await base.encodePrompt('red circle'))).toBeGreaterThan(0);
    // Refused on a model with another text encoder, naming the component.
    const e = await expectCode(Pipeline.load(OTHER_TEXT_ENCODER, { deltas: [r.delta] }), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/text_encoder fingerprint/);
  });

  test("concept-embedding (Lethe's): only the concept's token rows change; prompts without its tokens encode bit for bit as before", async () => {
    const r = await erase({ model: MODEL, pipeline: pipe, method: 'fewshot-te', concept: 'red circle', images: IMAGES, teParams: 'concept-embedding', lr: 1e-1, out: out('rows') });
    const delta = (await loadSafetensors(r.delta)).tensors['text_encoder.text_model.embeddings.token_embedding.weight'] as Tensor;
    const dim = delta.shape[1];
    const rows = pipe.tokenizer.tokenize('red circle').map((t) => pipe.tokenizer.tokenToId(t));
    const changed = [...Array(delta.shape[0]).keys()].filter((row) => delta.data.subarray(row * dim, (row + 1) * dim).some((v) => v !== 0));
    expect(changed.sort((a, b) => a - b)).toEqual([...rows].sort((a, b) => a - b));
    const erased = await Pipeline.load(MODEL, { deltas: [r.delta] });
    expect(maxAbsDiff(await erased.encodePrompt('a blue square'), await pipe.encodePrompt('a blue square'))).toBe(0);
    expect(maxAbsDiff(await erased.encodePrompt('a red circle'), await pipe.encodePrompt('a red circle'))).toBeGreaterThan(0);
  });

  test('generate, export and a UNet delta mixed with a text-encoder delta in one run', async () => {
    const te = out('portable');
    expect(fs.existsSync(te)).toBe(true);  // written by the test above
    const unet = await erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'red circle', iterations: 2, ddimSteps: 3, lr: 1e-3, out: out('unet-part') });
    const both = await Pipeline.load(MODEL, { deltas: [unet.delta, te] });
    const teOnly = await Pipeline.load(MODEL, { deltas: [te] });
    const unetOnly = await Pipeline.load(MODEL, { deltas: [unet.delta] });
    expect(both.deltas.map((d) => d.components)).toEqual([['unet'], ['text_encoder']]);
    // The text states are the text-encoder delta's; the UNet's prediction is the UNet delta's.
    expect(maxAbsDiff(await both.encodePrompt('red circle'), await teOnly.encodePrompt('red circle'))).toBe(0);
    const g = await both.generate({ prompt: 'red circle', steps: 2, seed: 1 });
    const gUnet = await unetOnly.generate({ prompt: 'red circle', steps: 2, seed: 1 });
    expect(g.images.data.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(g.images, gUnet.images)).toBeGreaterThan(0);
    const folder = path.join(work, 'exported');
    const r = await exportModel(MODEL, [unet.delta, te], folder);
    expect([...r.components].sort()).toEqual(['text_encoder', 'unet']);
    const merged = await Pipeline.load(folder);
    expect(maxAbsDiff(await merged.encodePrompt('red circle'), await both.encodePrompt('red circle'))).toBeLessThanOrEqual(1e-5);
    const gMerged = await merged.generate({ prompt: 'red circle', steps: 2, seed: 1 });
    expect(maxAbsDiff(gMerged.images, g.images)).toBeLessThanOrEqual(1e-3);
  });

  test('--generate makes the images with the base model (cached); --zero-shot needs none', async () => {
    const saved = process.env.LETHE_CACHE_DIR;
    process.env.LETHE_CACHE_DIR = path.join(work, 'cache');
    try {
      const first = await erase({ model: MODEL, pipeline: pipe, method: 'fewshot-te', concept: 'red circle', generate: 3, generateSteps: 2, lr: 1e-3, epochs: 1, out: out('generated') });
      expect(first.applied.notes.some((n) => /generated 3 images/.test(n))).toBe(true);
      expect(first.losses).toHaveLength(2);
      const again = await erase({ model: MODEL, pipeline: pipe, method: 'fewshot-te', concept: 'red circle', generate: 3, generateSteps: 2, lr: 1e-3, epochs: 1, out: out('generated-2') });
      expect(again.applied.notes.some((n) => /generated/.test(n))).toBe(false);
      expect(again.losses).toEqual(first.losses);
    } finally {
      if (saved === undefined) delete process.env.LETHE_CACHE_DIR;
      else process.env.LETHE_CACHE_DIR = saved;
    }
  });

  test('templates: the reference\'s for objects and styles, a file\'s, or the world\'s captions', () => {
    const ctx = (o: object, world?: string) => ({ concepts: ['Monet'], options: { kind: 'auto', worldPrompts: true, ...o } as never, model: (world ? { world } : {}) as never, note: () => {} });
    const objects = fewshotPrompts(ctx({})).prompts;
    expect(objects).toHaveLength(27);
    expect(objects[0]).toBe('a photo of a Monet');
    const styles = fewshotPrompts(ctx({ kind: 'style' })).prompts;
    expect(styles).toHaveLength(19);
    expect(styles[0]).toBe('a painting in the style of Monet');
    expect(fewshotPrompts(ctx({ templates: ['{} at night', ' '] })).prompts).toEqual(['Monet at night']);
    const world = (c: string) => fewshotPrompts({ ...ctx({}, 'shapes'), concepts: [c] }).prompts;
    expect(world('circle')).toHaveLength(124);
    expect(world('circle').every((p) => p.includes('circle'))).toBe(true);
    expect(world('Sunny')).toEqual(['Sunny', 'a picture of Sunny', 'a drawing of Sunny']);
    expect(world('striped').every((p) => p.includes('striped'))).toBe(true);
  });

  test('bad input: each a clear error with a code, nothing written', async () => {
    const empty = path.join(work, 'empty');
    fs.mkdirSync(empty);
    const broken = path.join(work, 'broken');
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, 'x.png'), 'not a png');
    const base = { model: MODEL, pipeline: pipe, method: 'fewshot-te', concept: 'red circle', lr: 1e-3 };
    const cases: [string, object, string, RegExp][] = [
      ['no images', {}, 'LETHE_BAD_ARGUMENT', /--images DIR, --generate N or --zero-shot/],
      ['two sources', { images: IMAGES, zeroShot: true }, 'LETHE_BAD_ARGUMENT', /one of --images/],
      ['an empty folder', { images: empty }, 'LETHE_BAD_ARGUMENT', /holds no image/],
      ['a missing folder', { images: path.join(work, 'nope') }, 'LETHE_IO', /cannot read the folder/],
      ['a file that is not an image', { images: broken }, 'LETHE_BAD_ARGUMENT', /x\.png cannot be read as an image/],
      ['UNet parameters', { images: IMAGES, params: 'esd-x' }, 'LETHE_BAD_ARGUMENT', /text encoder only.*UNet parameter/],
      ['a template without {}', { images: IMAGES, templates: ['a photo'] }, 'LETHE_BAD_ARGUMENT', /has no \{\}/],
      ['an empty template list', { images: IMAGES, templates: [''] }, 'LETHE_BAD_ARGUMENT', /templates is empty/],
      ['an unknown parameter set', { images: IMAGES, teParams: 'ffn' }, 'LETHE_BAD_ARGUMENT', /teParams/],
    ];
    for (const [what, o, code, message] of cases) {
      const file = out(`bad-${what.replace(/\W+/g, '-')}`);
      const e = await expectCode(erase({ ...base, ...o, out: file } as never), code);
      expect([what, message.test(e.message)]).toEqual([what, true]);
      expect(fs.existsSync(file)).toBe(false);
    }
  });

  test('the CLI: --images, --te-params, --templates FILE, --json', () => {
    const templates = path.join(work, 'templates.txt');
    fs.writeFileSync(templates, 'a photo of a {}\n\na drawing of a {}\n');
    const file = out('cli');
    const r = runCli(['erase', '--model', MODEL, '--method', 'fewshot-te', '--concept', 'red circle', '--images', IMAGES, '--te-params', 'mlp', '--templates', templates, '--epochs', '2', '--lr', '1e-3', '--out', file, '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { iterations: number; method: string };
    expect(j.method).toBe('fewshot-te');
    expect(j.iterations).toBe(4);
    const report = JSON.parse(fs.readFileSync(file.replace('.safetensors', '.report.json'), 'utf8')) as { hyperparameters: { trainPrompts: string[]; teParams: string } };
    expect(report.hyperparameters.trainPrompts).toEqual(['a photo of a red circle', 'a drawing of a red circle']);
    expect(report.hyperparameters.teParams).toBe('mlp');
    expect(readDeltaInfo(file).metadata.parameter_selection).not.toMatch(/self_attn/);
  });
});
