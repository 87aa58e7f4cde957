/** The per-user sample cache (src/cache/samples.ts) and `lethe cache`. */
import * as fs from 'fs';
import { cachedSamples, clearSamples, listSamples, samplesDir } from '../src/cache/samples';
import { evaluatePrompts } from '../src/eval/evaluate';
import { Pipeline, type Tensor } from '../src';
import { runCli, tmpDir } from './helpers';

const root = tmpDir('lethe-cache-test-');
const saved = process.env.LETHE_CACHE_DIR;
beforeAll(() => {
  process.env.LETHE_CACHE_DIR = root;
});
afterAll(() => {
  if (saved === undefined) delete process.env.LETHE_CACHE_DIR;
  else process.env.LETHE_CACHE_DIR = saved;
  fs.rmSync(root, { recursive: true, force: true });
});

const t = (v: number): Tensor => ({ dtype: 'float32', shape: [2], data: new Float32Array([v, v + 1]) });

describe('cachedSamples', () => {
  test('makes once, then reads back exactly what it made, per key', async () => {
    let made = 0;
    const make = async () => ({ x: t(++made) });
    const key = { kind: 'generation', model: 'm1', prompt: 'a red circle', seed: 3, steps: 25 };
    const first = await cachedSamples(key, make);
    const second = await cachedSamples({ steps: 25, seed: 3, prompt: 'a red circle', model: 'm1', kind: 'generation' }, make);  // same key, other order
    expect([first.hit, second.hit, made]).toEqual([false, true, 1]);
    expect(Array.from((second.tensors.x as Tensor).data)).toEqual([1, 2]);
    const other = await cachedSamples({ ...key, seed: 4 }, make);
    expect([other.hit, made]).toEqual([false, 2]);
  });

  test('a damaged entry is made again and replaced; LETHE_SAMPLE_CACHE=0 neither reads nor writes', async () => {
    const key = { kind: 'anchors', model: 'm2', prompts: ['a cat'] };
    await cachedSamples(key, async () => ({ x: t(5) }));
    const [entry] = listSamples('anchors');
    fs.writeFileSync(entry.file, 'not a safetensors file');
    const again = await cachedSamples(key, async () => ({ x: t(7) }));
    expect([again.hit, Array.from((again.tensors.x as Tensor).data)]).toEqual([false, [7, 8]]);
    expect((await cachedSamples(key, async () => ({ x: t(9) }))).hit).toBe(true);
    process.env.LETHE_SAMPLE_CACHE = '0';
    try {
      expect((await cachedSamples(key, async () => ({ x: t(9) }))).hit).toBe(false);
      expect((await cachedSamples({ kind: 'anchors', model: 'new' }, async () => ({ x: t(1) }))).hit).toBe(false);
    } finally {
      delete process.env.LETHE_SAMPLE_CACHE;
    }
    expect(listSamples('anchors').map((e) => e.key.model)).toEqual(['m2']);
  });

  test('lethe cache ls and clear, by kind', async () => {
    await cachedSamples({ kind: 'trajectories', model: 'm3' }, async () => ({ x: t(1) }));
    const env = { LETHE_CACHE_DIR: root };
    const ls = JSON.parse(runCli(['cache', 'ls', '--json'], { env }).stdout);
    expect(ls.dir).toBe(samplesDir());
    expect(ls.entries.map((e: { kind: string }) => e.kind).sort()).toEqual(['anchors', 'generation', 'generation', 'trajectories']);
    const cleared = JSON.parse(runCli(['cache', 'clear', '--kind', 'generation', '--json'], { env }).stdout);
    expect(cleared.removed).toBe(2);
    expect(listSamples().map((e) => e.kind).sort()).toEqual(['anchors', 'trajectories']);
    expect(clearSamples().removed).toBe(2);
    expect(runCli(['cache', 'ls'], { env }).stdout).toMatch(/0 entries/);
  });
});

describe('evaluation reuses a base model\'s images', () => {
  test('the second evaluation reads the images back and judges them the same', async () => {
    const pipe = await Pipeline.load('default');
    const prompts = [{ prompt: 'a red circle', expect: { shape: 'circle' as const, color: 'red' as const }, group: 'x' }];
    const settings = { n: 2, steps: 4, guidance: 5, seed: 1 };
    const generate = jest.spyOn(pipe, 'generate');
    const a = await evaluatePrompts(pipe, prompts, settings, { cache: true, keepImages: true });
    expect(generate).toHaveBeenCalledTimes(1);
    const before = listSamples('generation').length;
    const b = await evaluatePrompts(pipe, prompts, settings, { cache: true, keepImages: true });
    expect(generate).toHaveBeenCalledTimes(1);  // read back, not generated again
    expect(listSamples('generation').length).toBe(before);
    expect(Buffer.from((b[0].images as Tensor).data.buffer).equals(Buffer.from((a[0].images as Tensor).data.buffer))).toBe(true);
    expect(b[0].rates).toEqual(a[0].rates);
    // Another sampler setting is another entry; without the cache, every call generates.
    await evaluatePrompts(pipe, prompts, { ...settings, steps: 5 }, { cache: true });
    expect([generate.mock.calls.length, listSamples('generation').length]).toEqual([2, before + 1]);
    await evaluatePrompts(pipe, prompts, settings);
    expect(generate).toHaveBeenCalledTimes(3);
  });
});
