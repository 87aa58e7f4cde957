import * as fs from 'fs';
import * as path from 'path';
import { saveSafetensors } from '../src';
import { runCli, tmpDir } from './helpers';

const dir = tmpDir();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const w = (shape: number[]) => ({ dtype: 'float32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

beforeAll(async () => {
  await saveSafetensors(path.join(dir, 'delta.safetensors'), { 'unet.a.weight': w([4, 3]), 'unet.b.bias': w([5]) }, { metadata: { method: 'esd-x' } });
  // A minimal diffusers layout: model_index.json plus component folders.
  const model = path.join(dir, 'model');
  fs.mkdirSync(path.join(model, 'unet'), { recursive: true });
  fs.mkdirSync(path.join(model, 'scheduler'), { recursive: true });
  fs.mkdirSync(path.join(model, 'vae'), { recursive: true });
  fs.writeFileSync(
    path.join(model, 'model_index.json'),
    JSON.stringify({ _class_name: 'StableDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'], scheduler: ['diffusers', 'DDIMScheduler'], vae: ['diffusers', 'AutoencoderKL'] }),
  );
  fs.writeFileSync(path.join(model, 'unet', 'config.json'), JSON.stringify({ _class_name: 'UNet2DConditionModel', in_channels: 4, block_out_channels: [32, 64] }));
  fs.writeFileSync(path.join(model, 'scheduler', 'scheduler_config.json'), JSON.stringify({ _class_name: 'DDIMScheduler', num_train_timesteps: 1000 }));
  await saveSafetensors(path.join(model, 'unet', 'diffusion_pytorch_model.safetensors'), { 'conv_in.weight': w([32, 4, 3, 3]), 'conv_in.bias': w([32]) });
  fs.writeFileSync(path.join(model, 'vae', 'config.json'), '{}');
  fs.writeFileSync(path.join(model, 'vae', 'diffusion_pytorch_model.bin'), 'pickle bytes');
});

describe('lethe inspect', () => {
  test('lists the tensors, metadata and totals of a safetensors file', () => {
    const r = runCli(['inspect', path.join(dir, 'delta.safetensors'), '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kind).toBe('safetensors');
    expect(j.tensorCount).toBe(2);
    expect(j.parameterCount).toBe(17);
    expect(j.metadata).toEqual({ method: 'esd-x' });
    expect(j.tensors).toContainEqual({ name: 'unet.a.weight', dtype: 'float32', shape: [4, 3] });
    const text = runCli(['inspect', path.join(dir, 'delta.safetensors')]);
    expect(text.stdout).toMatch(/unet\.a\.weight\s+float32\s+\[4, 3\]/);
  });

  test('describes a diffusers folder and refuses a component that only has pickle weights', () => {
    fs.renameSync(path.join(dir, 'model', 'vae', 'diffusion_pytorch_model.bin'), path.join(dir, 'vae.bin'));
    const r = runCli(['inspect', path.join(dir, 'model'), '--json']);
    fs.renameSync(path.join(dir, 'vae.bin'), path.join(dir, 'model', 'vae', 'diffusion_pytorch_model.bin'));
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.pipelineClass).toBe('StableDiffusionPipeline');
    const unet = j.components.find((c: { name: string }) => c.name === 'unet');
    expect(unet.parameterCount).toBe(32 * 4 * 9 + 32);
    expect(unet.config.block_out_channels).toEqual([32, 64]);
    const bad = runCli(['inspect', path.join(dir, 'model')]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/LETHE_BAD_CHECKPOINT: .*pickle/);
  });

  test('bad files exit non-zero with one line carrying LETHE_BAD_CHECKPOINT', () => {
    const f = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(f, Buffer.from([200, 0, 0, 0, 0, 0, 0, 0, 123]));
    const r = runCli(['inspect', f]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^lethe: LETHE_BAD_CHECKPOINT: .*header length 200 runs past the end/);
    const missing = runCli(['inspect', path.join(dir, 'nope')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/LETHE_IO/);
  });

  test('lethe info --json reports the native core', () => {
    const r = runCli(['info', '--json']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.torchVersion).toMatch(/^\d+\.\d+/);
    expect(typeof j.cudaAvailable).toBe('boolean');
    expect(j.libtorchPath).toMatch(/libtorch_cpu\.so$/);
  });
});
