// The shared training loop (native/train/trainer.h TrainLoop) through the bundled model's jobs, on
// tiny configs: deterministic per seed, and a run cancelled midway then resumed from its checkpoint
// ends bit-identical to an uninterrupted one (VAE, decoder-only fine-tuning, LDM with EMA).
import * as fs from 'fs';
import * as path from 'path';
import { loadSafetensors, saveSafetensors, type AnyTensor } from '../src';
import { runNativeJob, type RunOptions } from '../src/job';
import { native } from '../src/native';
import { renderBatch } from '../src/world/dataset';
import { expectCode, rng, ROOT, tmpDir } from './helpers';

jest.setTimeout(120000);

type Train = (o: object) => Promise<{ loss: number }>;
const nat = () => native() as unknown as { trainVae: Train; trainLdm: Train; encodeLatents: (o: object) => Promise<{ latentStd: number }> };
const TINY = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const data = path.join(work, 'dataset.safetensors');

beforeAll(async () => {
  const n = 8;
  const batch = await renderBatch({ n, seed: 3 });
  const r = rng(5);
  const ids = BigInt64Array.from({ length: n * 77 }, () => BigInt(Math.floor(r() * 826)));
  await saveSafetensors(data, { images: { dtype: 'uint8', shape: batch.shape, data: batch.images }, ids: { dtype: 'int64', shape: [n, 77], data: ids } });
});

/** A model folder with the tiny fixture's configs (weights are what training writes). */
function modelDir(name: string, withVaeFrom?: string): string {
  const dir = path.join(work, name);
  for (const c of ['vae', 'unet', 'text_encoder']) {
    fs.mkdirSync(path.join(dir, c), { recursive: true });
    fs.copyFileSync(path.join(TINY, c, 'config.json'), path.join(dir, c, 'config.json'));
  }
  if (withVaeFrom) fs.copyFileSync(path.join(withVaeFrom, 'vae', 'diffusion_pytorch_model.safetensors'), path.join(dir, 'vae', 'diffusion_pytorch_model.safetensors'));
  return dir;
}

async function tensors(file: string): Promise<Record<string, AnyTensor>> {
  return (await loadSafetensors(file)).tensors;
}

function expectIdentical(a: Record<string, AnyTensor>, b: Record<string, AnyTensor>) {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(a)) expect(Buffer.compare(Buffer.from(a[k].data.buffer, a[k].data.byteOffset, a[k].data.byteLength), Buffer.from(b[k].data.buffer, b[k].data.byteOffset, b[k].data.byteLength))).toBe(0);
}

function differs(a: AnyTensor, b: AnyTensor): boolean {
  return Buffer.compare(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength), Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)) !== 0;
}

/** Runs `start` to the end; with `cancelAfter`, first cancels it once that step is reported, then resumes. */
async function train(start: Train, options: object, cancelAfter?: number): Promise<void> {
  if (cancelAfter !== undefined) {
    const ac = new AbortController();
    const run: RunOptions = { signal: ac.signal, onProgress: (e) => e.step >= cancelAfter && ac.abort() };
    await expectCode(runNativeJob((o) => start({ ...options, ...o }), run), 'LETHE_CANCELLED');
  }
  await runNativeJob((o) => start({ ...options, ...o }));
}

const vaeOptions = (dir: string, extra: object = {}) => ({ modelDir: dir, data, steps: 10, batch: 2, lr: 1e-3, warmup: 2, seed: 4, checkpoint: path.join(dir, 'vae.ckpt.safetensors'), checkpointEvery: 1, ...extra });
const vaeWeights = (dir: string) => tensors(path.join(dir, 'vae', 'diffusion_pytorch_model.safetensors'));

describe('shared training loop', () => {
  test('VAE: same seed, same weights; cancelled and resumed equals uninterrupted; another seed differs', async () => {
    const a = modelDir('vae-a'), b = modelDir('vae-b'), c = modelDir('vae-c');
    await train(nat().trainVae, vaeOptions(a));
    await train(nat().trainVae, vaeOptions(b), 2);
    await train(nat().trainVae, vaeOptions(c, { seed: 5 }));
    const [wa, wb, wc] = await Promise.all([vaeWeights(a), vaeWeights(b), vaeWeights(c)]);
    expectIdentical(wa, wb);
    expect(differs(wa['decoder.conv_out.weight'], wc['decoder.conv_out.weight'])).toBe(true);
  });

  test('decoder-only fine-tuning changes the decoder and leaves the encoder (and so every latent) as it was', async () => {
    const base = modelDir('vae-a');
    const a = modelDir('dec-a', base), b = modelDir('dec-b', base);
    const opts = (dir: string) => vaeOptions(dir, { decoderOnly: 1, mseWeight: 1, checkpoint: path.join(dir, 'dec.ckpt.safetensors') });
    await train(nat().trainVae, opts(a));
    await train(nat().trainVae, opts(b), 2);
    const [before, wa, wb] = await Promise.all([vaeWeights(base), vaeWeights(a), vaeWeights(b)]);
    expectIdentical(wa, wb);
    for (const k of Object.keys(before)) {
      const trained = k.startsWith('decoder.') || k.startsWith('post_quant_conv.');
      if (!trained) expect(differs(before[k], wa[k])).toBe(false);
    }
    expect(differs(before['decoder.conv_out.weight'], wa['decoder.conv_out.weight'])).toBe(true);
  });

  test('LDM (text encoder + UNet, EMA): cancelled and resumed equals uninterrupted', async () => {
    const vae = modelDir('vae-a');
    const latents = path.join(work, 'latents.safetensors');
    const { latentStd } = await runNativeJob((o) => nat().encodeLatents({ ...o, modelDir: vae, data, out: latents }));
    expect(latentStd).toBeGreaterThan(0);
    const ac = Float32Array.from({ length: 1000 }, (_, i) => Math.exp(-0.005 * (i + 1)));
    const opts = (dir: string) => ({
      modelDir: dir,
      data,
      latents,
      scalingFactor: 1 / latentStd,
      steps: 8,
      batch: 2,
      lr: 1e-3,
      warmup: 2,
      seed: 6,
      captionDropout: 0.5,
      emaDecay: 0.9,
      alphasCumprod: { dtype: 'float32', shape: [1000], data: ac },
      emptyIds: { dtype: 'int64', shape: [77], data: new BigInt64Array(77) },
      checkpoint: path.join(dir, 'ldm.ckpt.safetensors'),
      checkpointEvery: 1,
    });
    const a = modelDir('ldm-a'), b = modelDir('ldm-b');
    await train(nat().trainLdm, opts(a));
    await train(nat().trainLdm, opts(b), 2);
    for (const f of ['unet/diffusion_pytorch_model.safetensors', 'text_encoder/model.safetensors'])
      expectIdentical(await tensors(path.join(a, f)), await tensors(path.join(b, f)));

    // A damaged checkpoint is refused with LETHE_BAD_CHECKPOINT naming what is wrong (it used to
    // segfault on a missing EMA tensor, and a malformed step surfaced as LETHE_INTERNAL).
    const good = await loadSafetensors(path.join(a, 'ldm.ckpt.safetensors'));
    const emaKey = Object.keys(good.tensors).find((k) => k.startsWith('ema.'))!;
    const damaged: [string, Record<string, AnyTensor>, Record<string, string>, RegExp][] = [
      ['missing EMA tensor', Object.fromEntries(Object.entries(good.tensors).filter(([k]) => k !== emaKey)), good.metadata, new RegExp(`no tensor '${emaKey.replace(/\./g, '\\.')}'`)],
      ['missing generator state', Object.fromEntries(Object.entries(good.tensors).filter(([k]) => k !== 'rng')), good.metadata, /generator state/],
      ['step not a number', good.tensors, { ...good.metadata, step: 'eight' }, /'step' is 'eight', not a non-negative integer/],
      ['step with trailing text', good.tensors, { ...good.metadata, step: '8x' }, /not a non-negative integer/],
      ['step out of range', good.tensors, { ...good.metadata, step: '99999999999999999999999' }, /not a non-negative integer/],
    ];
    for (const [what, t, metadata, message] of damaged) {
      const c = modelDir(`ldm-damaged-${what.replace(/ /g, '-')}`);
      await saveSafetensors(path.join(c, 'ldm.ckpt.safetensors'), t, { metadata });
      const e = await expectCode(runNativeJob((o) => nat().trainLdm({ ...opts(c), ...o })), 'LETHE_BAD_CHECKPOINT');
      expect(e.message).toMatch(message);
    }
  });
});
