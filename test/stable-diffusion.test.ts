import * as fs from 'fs';
import * as path from 'path';
import { loadSafetensors, Pipeline, randomLatents, type AnyTensor, type Tensor } from '../src';
import { expectCode, ROOT, runCli, tmpDir } from './helpers';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'models');
const TOL = 1e-4; // fp32 max abs error per module

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

const f32 = (t: AnyTensor) => t as Tensor;

describe.each(['tiny-sd1', 'tiny-sd2'])('%s matches diffusers/transformers', (name) => {
  const dir = path.join(FIXTURES, name);
  let pipe: Pipeline;
  let ref: Record<string, AnyTensor>;
  let meta: Record<string, string>;
  // The native handle is reached through the public API only.
  const native = () => (pipe as unknown as { handle: { encodeText(o: object): Promise<Tensor>; vaeDecode(o: object): Promise<Tensor> } }).handle;

  beforeAll(async () => {
    pipe = await Pipeline.load(dir, { onWarning: () => {} });
    const r = await loadSafetensors(`${dir}-reference.safetensors`);
    ref = r.tensors;
    meta = r.metadata;
  });

  test('tokenizer ids', () => {
    const prompts = JSON.parse(meta.prompts) as string[];
    const ids = pipe.tokenize(prompts);
    expect(ids.shape).toEqual(ref['tokens.ids'].shape);
    expect(Array.from(ids.data)).toEqual(Array.from(ref['tokens.ids'].data as BigInt64Array));
  });

  test('text encoder: last hidden state, clip skip and the raw penultimate layer', async () => {
    const prompts = JSON.parse(meta.prompts) as string[];
    const last = await pipe.encodePrompt(prompts);
    expect(last.shape).toEqual(ref['text.last_hidden_state'].shape);
    expect(maxAbsDiff(last.data, f32(ref['text.last_hidden_state']).data)).toBeLessThanOrEqual(TOL);
    const skip1 = await pipe.encodePrompt(prompts, { clipSkip: 1 });
    expect(maxAbsDiff(skip1.data, f32(ref['text.clip_skip_1']).data)).toBeLessThanOrEqual(TOL);
    const raw = await native().encodeText({ ids: ref['tokens.ids'], skip: 1, finalNorm: false });
    expect(maxAbsDiff(raw.data, f32(ref['text.hidden_state_penultimate']).data)).toBeLessThanOrEqual(TOL);
  });

  test('UNet noise prediction (two timesteps in a batch, and a non-square latent)', async () => {
    const ts = Array.from(f32(ref['unet.in.timestep']).data);
    const out = await pipe.predictNoise(f32(ref['unet.in.sample']), ts, f32(ref['unet.in.encoder_hidden_states']));
    expect(out.shape).toEqual([2, 4, 8, 8]);
    expect(maxAbsDiff(out.data, f32(ref['unet.out']).data)).toBeLessThanOrEqual(TOL);
    const out2 = await pipe.predictNoise(f32(ref['unet.in2.sample']), f32(ref['unet.in2.timestep']).data[0], f32(ref['unet.in2.encoder_hidden_states']));
    expect(out2.shape).toEqual([1, 4, 8, 12]);
    expect(maxAbsDiff(out2.data, f32(ref['unet.out2']).data)).toBeLessThanOrEqual(TOL);
  });

  test('VAE encode (mean, logvar) and decode', async () => {
    const enc = await pipe.encode(f32(ref['vae.in.images']));
    expect(maxAbsDiff(enc.mean.data, f32(ref['vae.encode.mean']).data)).toBeLessThanOrEqual(TOL);
    expect(maxAbsDiff(enc.logvar.data, f32(ref['vae.encode.logvar']).data)).toBeLessThanOrEqual(TOL);
    const dec = await native().vaeDecode({ latents: ref['vae.in.latents'], scaled: false });
    expect(maxAbsDiff(dec.data, f32(ref['vae.decode.out']).data)).toBeLessThanOrEqual(TOL);
  });

  test.each([
    ['ddim', 'ddim', undefined],
    ['euler', 'euler', undefined],
    ['dpmpp-2m', 'dpmpp-2m', undefined],
    ['ddim_neg', 'ddim', 'blue'],
  ] as const)('txt2img %s with guidance from fixed latents', async (run, scheduler, negativePrompt) => {
    const t2i = JSON.parse(meta.txt2img);
    const r = await pipe.generate({
      prompt: t2i.prompt,
      negativePrompt,
      steps: t2i.num_inference_steps,
      guidance: t2i.guidance_scale,
      scheduler,
      latents: f32(ref[`txt2img.${run}.latents_in`]),
      height: t2i.height,
      width: t2i.width,
    });
    const want = f32(ref[`txt2img.${run}.latents_out`]).data;
    // Latents reach |x| ~ 20 after guidance 7.5 on random weights: compare relative to their scale.
    expect(maxAbsDiff(r.latents.data, want) / maxAbs(want)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(r.images.data, f32(ref[`txt2img.${run}.images`]).data)).toBeLessThanOrEqual(TOL);
  });
});

describe('seeded generation reproduces diffusers with a CPU torch.Generator', () => {
  let ref: Record<string, AnyTensor>;
  let meta: Record<string, string>;
  beforeAll(async () => {
    ({ tensors: ref, metadata: meta } = await loadSafetensors(path.join(FIXTURES, 'seeded-reference.safetensors')));
  });

  test('randomLatents(seed) equals torch.randn(generator=manual_seed(seed))', () => {
    for (const seed of [0, 1234]) expect(maxAbsDiff(randomLatents([2, 4, 8, 8], seed).data, f32(ref[`randn.seed${seed}`]).data)).toBe(0);
  });

  test('DDPM (stochastic) from a seed, 2 images per prompt', async () => {
    const run = JSON.parse(meta.ddpm);
    const pipe = await Pipeline.load(path.join(FIXTURES, 'tiny-sd1'));
    const r = await pipe.generate({ prompt: run.prompt, n: run.n, steps: run.steps, guidance: run.guidance, scheduler: 'ddpm', seed: run.seed, height: run.height, width: run.width });
    expect(maxAbsDiff(r.images.data, f32(ref['ddpm.images']).data)).toBeLessThanOrEqual(TOL);
  });
});

describe('bad input gets a clear error with a code', () => {
  const work = tmpDir();
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  const copyModel = (to: string) => fs.cpSync(path.join(FIXTURES, 'tiny-sd1'), to, { recursive: true });

  test('a missing component', async () => {
    const dir = path.join(work, 'no-vae');
    copyModel(dir);
    fs.rmSync(path.join(dir, 'vae'), { recursive: true });
    const e = await expectCode(Pipeline.load(dir), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/vae/);
    await expectCode(Pipeline.load(path.join(work, 'nothing-here')), 'LETHE_IO');
  });

  test('a config that does not match the weights lists the keys and shapes', async () => {
    const dir = path.join(work, 'mismatch');
    copyModel(dir);
    const cfgFile = path.join(dir, 'unet', 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    cfg.block_out_channels = [32, 32, 96];
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    const e = await expectCode(Pipeline.load(dir), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/config does not match the weights/);
    expect(e.message).toMatch(/shape mismatch: .*\(weights \[\d+(, \d+)*\], config \[\d+(, \d+)*\]\)/);
    cfg.block_out_channels = [32, 32, 64];
    cfg.layers_per_block = 1;
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    const e2 = await expectCode(Pipeline.load(dir), 'LETHE_BAD_CHECKPOINT');
    expect(e2.message).toMatch(/in the weights but not in the model: down_blocks\.0\.attentions\.1\./);
  });

  test('pickle weights are refused with how to convert', async () => {
    const dir = path.join(work, 'pickle');
    copyModel(dir);
    fs.renameSync(path.join(dir, 'vae', 'diffusion_pytorch_model.safetensors'), path.join(dir, 'vae', 'diffusion_pytorch_model.bin'));
    const e = await expectCode(Pipeline.load(dir), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/pickle/);
    expect(e.message).toMatch(/safe_serialization=True/);
  });

  test('wrong latent shape, empty prompt list, bad device and dtype', async () => {
    const pipe = await Pipeline.load(path.join(FIXTURES, 'tiny-sd1'));
    const latents = randomLatents([1, 4, 8, 9], 0);
    const e = await expectCode(pipe.generate({ prompt: 'a red circle', steps: 2, latents, height: 16, width: 16 }), 'LETHE_SHAPE_MISMATCH');
    expect(e.message).toMatch(/\[1,4,8,8\]/);
    await expectCode(pipe.generate({ prompt: [], steps: 2 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(pipe.encodePrompt([]), 'LETHE_BAD_ARGUMENT');
    await expectCode(pipe.generate({ prompt: 'x', steps: 0 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(pipe.generate({ prompt: 'x', steps: 2, height: 15, width: 16 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(pipe.predictNoise(randomLatents([1, 3, 8, 8], 0), 10, await pipe.encodePrompt('x')), 'LETHE_SHAPE_MISMATCH');
    await expectCode(Pipeline.load(path.join(FIXTURES, 'tiny-sd1'), { dtype: 'float16' }), 'LETHE_BAD_ARGUMENT');
    await expectCode(Pipeline.load(path.join(FIXTURES, 'tiny-sd1'), { device: 'cuda:7' }), 'LETHE_DEVICE');
  });

  test('bfloat16 runs and stays close to float32', async () => {
    const a = await Pipeline.load(path.join(FIXTURES, 'tiny-sd1'));
    const b = await Pipeline.load(path.join(FIXTURES, 'tiny-sd1'), { dtype: 'bfloat16' });
    const opts = { prompt: 'a red circle', steps: 3, guidance: 1, height: 16, width: 16, seed: 3 };
    const ra = await a.generate(opts);
    const rb = await b.generate(opts);
    const d = maxAbsDiff(ra.images.data, rb.images.data);
    expect(d).toBeGreaterThan(0); // really ran in another precision
    expect(d).toBeLessThan(0.2);
  });
});

describe('generation is async and cancellable', () => {
  test('the event loop keeps running and progress arrives during generation', async () => {
    const pipe = await Pipeline.load(path.join(FIXTURES, 'tiny-sd1'));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const steps: number[] = [];
    await pipe.generate({ prompt: 'a red circle', n: 4, steps: 40, height: 32, width: 32, onProgress: (e) => steps.push(e.step) });
    clearInterval(timer);
    expect(steps[steps.length - 1]).toBe(40);
    expect(ticks).toBeGreaterThan(3);
  });

  test('an abort mid-generation rejects with LETHE_CANCELLED', async () => {
    const pipe = await Pipeline.load(path.join(FIXTURES, 'tiny-sd1'));
    const ac = new AbortController();
    let seen = 0;
    const p = pipe.generate({ prompt: 'a red circle', steps: 500, height: 32, width: 32, signal: ac.signal, onProgress: () => ++seen === 2 && ac.abort() });
    await expectCode(p, 'LETHE_CANCELLED');
    expect(seen).toBeLessThan(500);
  });

  test('lethe generate writes PNGs and the tensor; an interrupted run leaves no files', async () => {
    const out = tmpDir();
    const model = path.join(FIXTURES, 'tiny-sd1');
    const ok = runCli(['generate', '--model', model, '--prompt', 'a red circle', '-n', '2', '--steps', '3', '--height', '16', '--width', '16', '--out', out, '--save-tensor', path.join(out, 'images.safetensors'), '--json']);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const summary = JSON.parse(ok.stdout);
    expect(summary.images).toHaveLength(2);
    const saved = await loadSafetensors(path.join(out, 'images.safetensors'));
    expect(saved.tensors.images.shape).toEqual([2, 3, 16, 16]);
    for (const f of summary.images) expect(fs.readFileSync(f).subarray(1, 4).toString()).toBe('PNG');

    // A long run, interrupted with SIGINT as Ctrl-C would.
    const { spawn } = await import('child_process');
    const out2 = path.join(out, 'interrupted');
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'lethe.js'), 'generate', '--model', model, '--prompt', 'x', '--steps', '500', '--height', '64', '--width', '64', '--out', out2, '--save-tensor', path.join(out, 'never.safetensors')]);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((r) => child.on('exit', r));
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const code = await exited;
    expect(stderr).toMatch(/LETHE_CANCELLED/);
    expect(code).toBe(130);
    expect(fs.existsSync(out2)).toBe(false);
    expect(fs.existsSync(path.join(out, 'never.safetensors'))).toBe(false);
    fs.rmSync(out, { recursive: true, force: true });
  });
});
