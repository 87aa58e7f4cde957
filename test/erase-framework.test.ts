/**
 * The erasure framework (src/erase/erase.ts, native/erase/erasure_job.cc): what every method owes
 * (one row per registered method), parameter selection, deltas per component, resume identity,
 * defaults, and the cross-attention memory hook against diffusers.
 */
import * as fs from 'fs';
import * as path from 'path';
import { componentFingerprint, modelFingerprint, erase, getMethod, loadSafetensors, makePlan, methodIds, Pipeline, readDeltaInfo, readSafetensorsHeader, registerMethod, saveSafetensors, type Tensor } from '../src';
import { erasureSamplingPlan } from '../src/schedulers';
import { defaultMethodFor, resolveOptions } from '../src/erase';
import { exportModel } from '../src/erase/export';
import { native } from '../src/native';
import { expectCode, maxAbsDiff, ROOT, runCli, tmpDir } from './helpers';

const MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

let pipe: Pipeline;
beforeAll(async () => {
  pipe = await Pipeline.load(MODEL);
});

const quick = { model: MODEL, concept: 'red circle', iterations: 3, ddimSteps: 4, lr: 1e-3 };
const out = (name: string) => path.join(work, `${name}.safetensors`);
const bytesEqual = (a: Tensor, b: Tensor) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
const leftovers = () => fs.readdirSync(work).filter((f) => f.includes('.tmp'));

describe('the method registry', () => {
  test('every method has its native half, and the CLI offers every method', () => {
    const nativeIds = (native() as unknown as { nativeErasureMethods(): string[] }).nativeErasureMethods();
    for (const id of methodIds()) expect([id, nativeIds.includes(getMethod(id).native)]).toEqual([id, true]);
    const help = runCli(['erase', '--help']);
    for (const id of methodIds()) expect(help.stdout).toContain(id);
    expect(help.stdout).toContain('--start-guidance');  // a method's own option, from its schema
  });

  test('a method id is registered once; an unknown one is refused with the list', async () => {
    expect(() => registerMethod(getMethod('esd-x'))).toThrow(/registered twice/);
    const e = await expectCode(erase({ ...quick, method: 'nope', out: out('nope') }), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/esd-x-strict/);
  });

  test("an option the method does not have is refused, naming the method's options", async () => {
    const e = await expectCode(erase({ ...quick, pipeline: pipe, method: 'esd-x', out: out('anchor'), anchor: 'a cat' } as never), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/'anchor' is not an option of esd-x.*startGuidance/);
  });
});

/** `quick` for a method: its own small settings (Concept Ablation: an anchor per concept and a few small anchor images; few-shot: images). */
function quickFor(method: string, concept = quick.concept) {
  const { ddimSteps, ...common } = quick;
  const anchors = { anchor: concept.split(',').map((_, i) => `a green thing ${i}`).join(','), anchorImages: 3, anchorSteps: 2, batch: 1 };
  if (getMethod(method).native === 'ca') return { ...common, concept, ...anchors };
  // DoCo: the discriminator alone at steps 0 and 1, the model from step 2 (and in the resumed part).
  if (getMethod(method).native === 'doco') return { ...common, concept, ...anchors, warmup: 1 };
  // Few-shot unlearning: three small images, one per step (so a checkpoint falls mid-epoch).
  if (getMethod(method).native === 'fewshot') return { ...common, concept, images: path.join(ROOT, 'test', 'fixtures', 'fewshot', 'images'), batch: 1 };
  // Prompt memory: its steps are erasure + transfer iterations (2 + 1 = quick's 3).
  if (getMethod(method).native === 'prompt-memory') return { ...common, concept, ddimSteps, iterations: 2, transferIterations: 1, promptTokens: 2, placement: 'mid' };
  return { ...common, concept, ddimSteps };
}

// What every method owes, whatever it computes.
describe.each(methodIds())('%s keeps the framework guarantees', (method) => {
  test('progress, a delta of its own keys only, no temporary files', async () => {
    const events: { step: number; total: number; loss: number }[] = [];
    const r = await erase({ ...quickFor(method), pipeline: pipe, method, out: out(`${method}-ok`), onProgress: (e) => e.loss !== undefined && events.push(e as never) });
    expect(events.map((e) => e.step)).toEqual([1, 2, 3]);
    expect(events.every((e) => e.total === 3 && Number.isFinite(e.loss))).toBe(true);
    expect(r.losses).toEqual(events.map((e) => e.loss));
    const keys = readSafetensorsHeader(r.delta).tensors.map((t) => t.name);
    expect(keys.sort()).toEqual([...r.trainedTensors].sort());
    expect(fs.existsSync(r.report)).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  test('an abort stops it with nothing written', async () => {
    const ac = new AbortController();
    const file = out(`${method}-abort`);
    await expectCode(erase({ ...quickFor(method), pipeline: pipe, method, iterations: 200, out: file, signal: ac.signal, onProgress: (e) => e.loss !== undefined && e.step === 2 && ac.abort() }), 'LETHE_CANCELLED');
    expect(fs.existsSync(file)).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  test('a NaN loss stops it with nothing written', async () => {
    const file = out(`${method}-nan`);
    // Every trainable weight at an absurd step (few-shot unlearning trains the text encoder only).
    const params = getMethod(method).native === 'fewshot' ? 'te-all' : 'esd-all';
    const e = await expectCode(erase({ ...quickFor(method), pipeline: pipe, method, params, iterations: 40, lr: 1e30, out: file }), 'LETHE_NON_FINITE');
    expect(e.message).toMatch(/nothing was written/);
    expect(fs.existsSync(file)).toBe(false);
  });

  test('an interrupted run resumes to the same losses (exactly) and the same delta (bit for bit)', async () => {
    const opts = { ...quickFor(method, 'red, star'), pipeline: pipe, method, iterations: 8, seed: 9 };
    const full = await erase({ ...opts, out: out(`${method}-full`) });
    const part = out(`${method}-part`);
    const ac = new AbortController();
    await expectCode(erase({ ...opts, out: part, checkpointEvery: 2, signal: ac.signal, onProgress: (e) => e.loss !== undefined && e.step === 5 && ac.abort() }), 'LETHE_CANCELLED');
    const resumed = await erase({ ...opts, out: part, checkpointEvery: 2, resume: true });
    expect(resumed.losses).toEqual(full.losses);  // the first four restored from the checkpoint in binary
    const a = (await loadSafetensors(full.delta)).tensors;
    const b = (await loadSafetensors(part)).tensors;
    for (const k of Object.keys(a)) expect([k, bytesEqual(a[k] as Tensor, b[k] as Tensor)]).toEqual([k, true]);
    expect(fs.existsSync(part.replace('.safetensors', '.ckpt.safetensors'))).toBe(false);
  });
});

describe('resume refuses a checkpoint written by another run', () => {
  const opts = { ...quick, method: 'esd-x', iterations: 6, seed: 2 };
  const file = out('identity');
  const ckpt = file.replace('.safetensors', '.ckpt.safetensors');
  beforeAll(async () => {
    const ac = new AbortController();
    await expectCode(erase({ ...opts, pipeline: pipe, out: file, checkpointEvery: 2, signal: ac.signal, onProgress: (e) => e.step === 3 && ac.abort() }), 'LETHE_CANCELLED');
    expect(fs.existsSync(ckpt)).toBe(true);
  });

  test.each([
    ['another learning rate', { lr: 3e-3 }, /option\.lr: checkpoint 0\.001, this run 0\.003/],
    ['another concept', { concept: 'blue star' }, /concepts: checkpoint \["red circle"\], this run \["blue star"\]/],
    ['another method', { method: 'esd-u' }, /method: checkpoint esd-x, this run esd-u/],
    ['other iterations', { iterations: 7 }, /option\.iterations/],
  ])('%s: named in the refusal, nothing written', async (_what, change, message) => {
    const e = await expectCode(erase({ ...opts, ...change, pipeline: pipe, out: file, checkpointEvery: 2, resume: true }), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(message);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(ckpt)).toBe(true);  // kept: the right run can still resume it
  });

  test('a checkpoint without an identity (another format) is refused', async () => {
    const odd = out('odd');
    await saveSafetensors(odd.replace('.safetensors', '.ckpt.safetensors'), { x: { dtype: 'float32', shape: [1], data: new Float32Array([1]) } });
    const e = await expectCode(erase({ ...opts, pipeline: pipe, out: odd, resume: true }), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/not a checkpoint of this Lethe version/);
  });
});

describe('parameter selection by component-qualified patterns', () => {
  test('patterns and exclusions select exactly what they say', async () => {
    const r = await erase({ ...quick, pipeline: pipe, method: 'esd-x', params: 'unet:*.attn2.*,!unet:*.to_out.*,!unet:*.to_q.*', out: out('pattern') });
    const keys = readSafetensorsHeader(r.delta).tensors.map((t) => t.name);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => /^unet\..*\.attn2\.to_[kv]\.weight$/.test(k))).toBe(true);
    const strict = await erase({ ...quick, pipeline: pipe, method: 'esd-x-strict', out: out('strict') });
    expect(keys.sort()).toEqual([...strict.trainedTensors].sort());  // the same set as the preset
    expect(JSON.parse(readDeltaInfo(r.delta).metadata.parameter_selection)).toEqual(['unet:*.attn2.*', '!unet:*.to_out.*', '!unet:*.to_q.*']);
  });

  test('the text encoder trains natively: a text-encoder delta changes the prompt states and records only its own fingerprint', async () => {
    const r = await erase({ ...quick, pipeline: pipe, method: 'esd-x', params: 'text_encoder:*.mlp.*', lr: 1e-2, out: out('te') });
    const keys = readSafetensorsHeader(r.delta).tensors.map((t) => t.name);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => /^text_encoder\.text_model\.encoder\.layers\.\d+\.mlp\.fc[12]\.(weight|bias)$/.test(k))).toBe(true);
    const info = readDeltaInfo(r.delta);
    expect(Object.keys(info.baseFingerprints)).toEqual(['text_encoder']);
    expect(info.baseFingerprints.text_encoder).toBe(await componentFingerprint(MODEL, 'text_encoder'));
    const erased = await Pipeline.load(MODEL, { deltas: [r.delta] });
    const before = await pipe.encodePrompt(['red circle']);
    const after = await erased.encodePrompt(['red circle']);
    expect(maxAbsDiff(before, after)).toBeGreaterThan(1e-4);
  });

  test.each([
    ['a pattern that matches nothing', 'unet:*.attn3.*', /'unet:\*\.attn3\.\*' matches no tensor of this model\. The model has (?=.*unet \(\d+ tensors, by ending\): conv_in\.weight, .*, \*\.attn2\.to_k\.weight)(?=.*text_encoder \(\d+ tensors, by ending\): text_model\.)/],
    ['exclusions that leave nothing', 'unet:*.attn2.to_k.*,!unet:*.to_k.*', /selects nothing once its exclusions apply/],
    ['a component the model does not have', 'vae:*', /names no component/],
    ['a word that is neither preset nor pattern', 'attn2', /neither a preset/],
  ])('%s is refused before any work', async (_what, params, message) => {
    const file = out('bad-params');
    const e = await expectCode(erase({ ...quick, pipeline: pipe, method: 'esd-x', params, out: file }), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(message);
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe('deltas per component', () => {
  let unetDelta: string;
  let teDelta: string;
  let otherUnet: string;
  beforeAll(async () => {
    unetDelta = (await erase({ ...quick, pipeline: pipe, method: 'esd-x-strict', lr: 1e-2, out: out('d-unet') })).delta;
    teDelta = (await erase({ ...quick, pipeline: pipe, method: 'esd-x', params: 'text_encoder:*', lr: 1e-2, out: out('d-te') })).delta;
    // The same text encoder with another UNet: a copy whose UNet weights differ in one tensor.
    otherUnet = path.join(work, 'other-unet');
    fs.cpSync(MODEL, otherUnet, { recursive: true });
    const file = path.join(otherUnet, 'unet', 'diffusion_pytorch_model.safetensors');
    const { tensors } = await loadSafetensors(file);
    (tensors['conv_in.bias'] as Tensor).data[0] += 0.5;
    await saveSafetensors(file, tensors);
  });

  test("a text-encoder delta applies to any model with that text encoder; a UNet delta only to its UNet", async () => {
    const other = await Pipeline.load(otherUnet, { deltas: [teDelta] });
    expect(other.deltas).toHaveLength(1);
    const e = await expectCode(Pipeline.load(otherUnet, { deltas: [unetDelta] }), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/another base model: its unet fingerprint/);
  });

  test('deltas compose: applied together they equal the exported merged model, which holds both components', async () => {
    const opts = { prompt: 'a red circle', steps: 3, height: 16, width: 16, seed: 2 };
    const both = await (await Pipeline.load(MODEL, { deltas: [unetDelta, teDelta] })).generate(opts);
    const onlyUnet = await (await Pipeline.load(MODEL, { deltas: [unetDelta] })).generate(opts);
    expect(maxAbsDiff(both.images, onlyUnet.images)).toBeGreaterThan(1e-4);  // the text-encoder delta counts
    const merged = path.join(work, 'merged-both');
    const r = await exportModel(MODEL, [unetDelta, teDelta], merged);
    expect(r.components).toEqual(['text_encoder', 'unet']);
    const fromExport = await (await Pipeline.load(merged)).generate(opts);
    expect(maxAbsDiff(fromExport.images, both.images)).toBeLessThanOrEqual(1e-5);
  });

  test('a version-1 delta (one whole-model fingerprint) still applies to its model only', async () => {
    const { tensors } = await loadSafetensors(unetDelta);
    const v1 = out('d-v1');
    const meta = (fp: string) => ({ metadata: { format: 'lethe-delta', format_version: '1', method: 'esd-x-strict', concepts: '["red circle"]', base_fingerprint: fp } });
    await saveSafetensors(v1, tensors, meta(await modelFingerprint(MODEL)));
    // It records no training prompts: its concepts stand for them (the report's generalization rows).
    expect(readDeltaInfo(v1).trainedPrompts).toEqual(['red circle']);
    expect(readDeltaInfo(unetDelta).trainedPrompts.length).toBeGreaterThan(0);
    const opts = { prompt: 'a red circle', steps: 3, height: 16, width: 16, seed: 2 };
    const a = await (await Pipeline.load(MODEL, { deltas: [v1] })).generate(opts);
    const b = await (await Pipeline.load(MODEL, { deltas: [unetDelta] })).generate(opts);
    expect(maxAbsDiff(a.images, b.images)).toBe(0);
    await saveSafetensors(v1, tensors, meta('0'.repeat(64)));
    const e = await expectCode(Pipeline.load(MODEL, { deltas: [v1] }), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/made from another base model/);
  });

  test('two deltas that set the same extra tensor are refused; export refuses prompt memory', async () => {
    const m1 = (await erase({ ...quick, pipeline: pipe, method: 'esd-x-strict', memoryTokens: 2, out: out('mem1') })).delta;
    const m2 = (await erase({ ...quick, pipeline: pipe, method: 'esd-x-strict', memoryTokens: 2, concept: 'blue', out: out('mem2') })).delta;
    expect(readDeltaInfo(m1).extras.sort()).toEqual(['extra.prompt_memory.k', 'extra.prompt_memory.v']);
    const e = await expectCode(Pipeline.load(MODEL, { deltas: [m1, m2] }), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/two deltas cannot both set the same extra tensor/);
    const target = path.join(work, 'merged-memory');
    const x = await expectCode(exportModel(MODEL, [m1], target), 'LETHE_BAD_ARGUMENT');
    expect(x.message).toMatch(/prompt memory.*cannot represent.*--delta/);
    expect(fs.existsSync(target)).toBe(false);
  });
});

describe('cross-attention memory matches diffusers\' attention over the concatenated states', () => {
  const FIX = path.join(ROOT, 'test', 'fixtures', 'memory', 'unet-memory.safetensors');
  let fx: Record<string, Tensor>;
  let meta: Record<string, string>;
  beforeAll(async () => {
    const f = await loadSafetensors(FIX);
    fx = f.tensors as Record<string, Tensor>;
    meta = f.metadata;
  });
  const writeDelta = async (file: string, tensors: Record<string, Tensor>, extra: Record<string, string> = {}) =>
    saveSafetensors(file, tensors, {
      metadata: { format: 'lethe-delta', format_version: '2', method: 'test', concepts: '[]', base_fingerprints: JSON.stringify({ unet: await componentFingerprint(MODEL, 'unet') }), ...extra },
    });
  const predict = (p: Pipeline) => p.predictNoise(fx.latents, fx.timestep.data[0], fx.context);

  test('shared by every attn2 layer, and per layer', async () => {
    expect(maxAbsDiff(await predict(pipe), fx.plain)).toBeLessThanOrEqual(1e-4);
    const shared = out('memory-shared');
    await writeDelta(shared, { 'extra.prompt_memory.k': fx['shared.k'], 'extra.prompt_memory.v': fx['shared.v'] }, { prompt_memory_layers: meta.layers });
    const withShared = await Pipeline.load(MODEL, { deltas: [shared] });
    const got = await predict(withShared);
    expect(maxAbsDiff(got, fx['shared.out'])).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(fx['shared.out'], fx.plain)).toBeGreaterThan(1e-3);  // the memory matters at this size
    const layers = JSON.parse(meta.perlayer) as string[];
    const per = out('memory-per-layer');
    await writeDelta(per, {
      [`extra.prompt_memory.${layers[0]}.k`]: fx['layer0.k'],
      [`extra.prompt_memory.${layers[0]}.v`]: fx['layer0.v'],
      [`extra.prompt_memory.${layers[1]}.k`]: fx['layer1.k'],
      [`extra.prompt_memory.${layers[1]}.v`]: fx['layer1.v'],
    });
    expect(maxAbsDiff(await predict(await Pipeline.load(MODEL, { deltas: [per] })), fx['perlayer.out'])).toBeLessThanOrEqual(1e-4);
    // ...and in sampling: generation with the memory differs from without.
    const opts = { prompt: 'a red circle', steps: 3, height: 16, width: 16, seed: 2 };
    expect(maxAbsDiff((await withShared.generate(opts)).images, (await pipe.generate(opts)).images)).toBeGreaterThan(1e-5);
  });

  test.each([
    ['keys without values', (fxs: Record<string, Tensor>) => ({ 'extra.prompt_memory.mid_block.attentions.0.transformer_blocks.0.attn2.k': fxs['shared.k'] }), {}, /needs both \.k and \.v/],
    ['a layer the UNet does not have', (fxs: Record<string, Tensor>) => ({ 'extra.prompt_memory.mid_block.attn9.k': fxs['shared.k'], 'extra.prompt_memory.mid_block.attn9.v': fxs['shared.v'] }), {}, /not a cross-attention layer/],
    ['shared memory without its layers', (fxs: Record<string, Tensor>) => ({ 'extra.prompt_memory.k': fxs['shared.k'], 'extra.prompt_memory.v': fxs['shared.v'] }), {}, /needs the metadata prompt_memory_layers/],
    ['an unknown extra kind', (fxs: Record<string, Tensor>) => ({ 'extra.adapter.w': fxs['shared.k'] }), {}, /cannot apply/],
  ])('a bad memory delta (%s) is refused and changes nothing', async (_what, tensors, extra, message) => {
    const file = out('memory-bad');
    await writeDelta(file, tensors(fx), extra);
    const p = await Pipeline.load(MODEL);
    const e = await expectCode(p.applyDelta(file), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(message);
    expect(maxAbsDiff(await predict(p), fx.plain)).toBeLessThanOrEqual(1e-4);
  });

  test('memory tokens of the wrong width are refused', async () => {
    const file = out('memory-width');
    const narrow: Tensor = { dtype: 'float32', shape: [2, 7], data: new Float32Array(14) };
    await writeDelta(file, { 'extra.prompt_memory.k': narrow, 'extra.prompt_memory.v': narrow }, { prompt_memory_layers: meta.layers });
    await expectCode(Pipeline.load(MODEL, { deltas: [file] }), 'LETHE_SHAPE_MISMATCH');
  });

  test('memory layers that match no attn2 layer are refused, listing the layers', async () => {
    const e = await expectCode(erase({ ...quick, pipeline: pipe, method: 'esd-x', memoryTokens: 2, memoryLayers: 'nowhere.*', out: out('mem-none') }), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/match no cross-attention layer; this UNet has down_blocks\.0\.attentions\.0\.transformer_blocks\.0\.attn2/);
  });
});

describe('defaults that come with the model', () => {
  test("the bundled model's measured defaults apply, given options win, and the report says which is which", async () => {
    const bundled = await Pipeline.load('default');
    expect(defaultMethodFor(bundled)).toBe('esd-x-strict');
    expect(defaultMethodFor(pipe)).toBe('esd-x');
    const a = resolveOptions(getMethod('esd-x-strict'), bundled, { lr: 5e-4 });
    expect(a.values).toMatchObject({ lr: 5e-4, iterations: 400, ddimSteps: 25, worldPrompts: true, eta: 1 });
    expect(a.sources).toMatchObject({ lr: 'given', iterations: 'model', ddimSteps: 'model', worldPrompts: 'model' });
    // A method the model has no measurements for: the reference's, and the run says so.
    const u = resolveOptions(getMethod('esd-u'), bundled, {});
    expect(u.sources.lr).toBe('reference');
    expect(u.notes.join()).toMatch(/measured defaults for esd-x-strict, ca-model, fewshot-te, prompt-memory, doco but not for esd-u/);
    const ca = resolveOptions(getMethod('ca-model'), bundled, { anchor: 'a yellow face' });
    expect(ca.values).toMatchObject({ lr: 3e-4, iterations: 200, params: 'xattn', anchorImages: 200, anchorSteps: 25, anchorGuidance: 6 });
    expect(ca.sources).toMatchObject({ lr: 'model', anchorSteps: 'reference', anchor: 'given' });
    // A user's checkpoint has no lethe.json: the reference's settings.
    const b = resolveOptions(getMethod('esd-x'), pipe, {});
    expect(b.values).toMatchObject({ lr: 1e-5, iterations: 1000, ddimSteps: 50, worldPrompts: false });
    expect(Object.values(b.sources).every((s) => s === 'reference')).toBe(true);
  });

  test('lethe erase prints which defaults applied before it trains', () => {
    const file = out('cli-defaults');
    const r = runCli(['erase', '--model', MODEL, '--concept', 'red circle', '--iterations', '1', '--ddim-steps', '2', '--out', file, '--json']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/esd-x on .*tiny-sd1/);
    expect(r.stderr).toMatch(/the method's reference defaults: lr 0\.00001.*eta 1/);
    expect(r.stderr).toMatch(/given: iterations 1.*ddimSteps 2/);
    expect(JSON.parse(fs.readFileSync(file.replace('.safetensors', '.report.json'), 'utf8')).defaults.sources).toMatchObject({ lr: 'reference', iterations: 'given' });
  });

  test('a broken lethe.json is refused, naming the file and the field', async () => {
    const dir = path.join(work, 'bad-defaults');
    fs.cpSync(MODEL, dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'lethe.json'), JSON.stringify({ format: 'lethe-model-defaults', format_version: 1, generation: { steps: 0 } }));
    const e = await expectCode(Pipeline.load(dir), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/lethe\.json: generation\.steps/);
    fs.writeFileSync(path.join(dir, 'lethe.json'), JSON.stringify({ format: 'lethe-model-defaults', format_version: 1, erase: { methods: { 'esd-x': { lr: -1 } } } }));
    const p = await Pipeline.load(dir);
    const e2 = await expectCode(erase({ ...quick, model: dir, pipeline: p, method: 'esd-x', lr: undefined, out: out('bad-defaults') }), 'LETHE_BAD_CHECKPOINT');
    expect(e2.message).toMatch(/lr: .*from .*lethe\.json/);
  });

  test("generation on the bundled model uses its own sampler and steps; a user's checkpoint Stable Diffusion's", async () => {
    const bundled = await Pipeline.load('default');
    const g = await bundled.generate({ prompt: 'a red circle', n: 1 });
    expect([g.plan.scheduler, g.plan.steps.length]).toEqual(['dpmpp-2m', 25]);
    const t = await pipe.generate({ prompt: 'a red circle', n: 1, height: 16, width: 16 });
    expect(t.plan.steps.length).toBe(50);
  });
});

describe('sampling inside erasures follows the reference sampler (no clipping unless the model asks)', () => {
  const dpm = { _class_name: 'DPMSolverMultistepScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000, steps_offset: 1, timestep_spacing: 'linspace' };

  test("a config written for another scheduler gets DDIM's class default in diffusers' from_config, but not in an erasure", () => {
    expect(makePlan(dpm, { scheduler: 'ddim', steps: 10 }).clipSample).toBe(1);  // as DDIMScheduler.from_config(dpm_config)
    expect(erasureSamplingPlan(dpm, 10).clipSample).toBeNull();  // as CompVis' DDIM sampler, which ESD's reference uses
    expect(erasureSamplingPlan({ ...dpm, _class_name: 'DDIMScheduler', clip_sample: true }, 10).clipSample).toBe(1);  // the model asks for it
    expect(makePlan(dpm, { scheduler: 'ddim', steps: 10, clipSample: false }).clipSample).toBeNull();
    expect(() => makePlan(dpm, { scheduler: 'euler', steps: 10, clipSample: true })).toThrow(/ddim and ddpm samplers only/);
  });

  test("the bundled model's scheduler config says clip_sample: false, and generate can set it", async () => {
    const cfg = JSON.parse(fs.readFileSync(path.join(ROOT, 'models', 'shapes-64', 'scheduler', 'scheduler_config.json'), 'utf8'));
    expect(cfg.clip_sample).toBe(false);
    const a = await pipe.generate({ prompt: 'a red circle', steps: 3, height: 16, width: 16, scheduler: 'ddim', clipSample: true });
    const b = await pipe.generate({ prompt: 'a red circle', steps: 3, height: 16, width: 16, scheduler: 'ddim' });
    expect([a.plan.clipSample, b.plan.clipSample]).toEqual([1, null]);  // tiny-sd1's DDIM config says false
  });
});
