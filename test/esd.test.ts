import * as fs from 'fs';
import * as path from 'path';
import { erase, loadSafetensors, Pipeline, readDeltaInfo, readSafetensorsHeader, type Tensor } from '../src';
import { exportModel } from '../src/erase/export';
import { expectCode, ROOT, runCli, tmpDir } from './helpers';

const MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
const FIX = path.join(ROOT, 'test', 'fixtures', 'esd');
const cases = JSON.parse(fs.readFileSync(path.join(FIX, 'cases.json'), 'utf8')) as Record<string, { args: string[]; losses: number[]; schedulerConfig?: object }>;
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

let pipe: Pipeline;
beforeAll(async () => {
  pipe = await Pipeline.load(MODEL);
});

function argsToOptions(args: string[]) {
  const get = (k: string) => args[args.indexOf(k) + 1];
  const num = (k: string, d: number) => (args.includes(k) ? Number(get(k)) : d);
  const listOf = (flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));
  const preserve = listOf('--preserve');
  return {
    ...(args.includes('--memory-tokens') ? { memoryTokens: num('--memory-tokens', 0), memoryLayers: get('--memory-layers') } : {}),
    ...(preserve.length ? { preserve, preserveWeight: num('--preserve-weight', 1), preserveProjection: num('--preserve-projection', 0), projectionKeep: listOf('--projection-keep') } : {}),
    method: get('--method') as 'esd-x',
    concept: get('--concept'),
    iterations: num('--iterations', 1000),
    ddimSteps: num('--ddim-steps', 50),
    lr: num('--lr', 1e-5),
    eta: num('--eta', 1),
    startGuidance: num('--start-guidance', 3),
    seed: num('--seed', 0),
  };
}

describe('ESD matches the reference loop on PyTorch + diffusers', () => {
  test.each(Object.keys(cases))('%s: same loss curve and the same delta', async (name) => {
    const out = path.join(work, `${name}.safetensors`);
    let model = MODEL;
    let p = pipe;
    if (cases[name].schedulerConfig) {
      // The case's model: tiny-sd1 with another scheduler config (as make_esd_fixtures.py builds it).
      model = path.join(work, `model-${name}`);
      fs.cpSync(MODEL, model, { recursive: true });
      fs.writeFileSync(path.join(model, 'scheduler', 'scheduler_config.json'), JSON.stringify(cases[name].schedulerConfig));
      p = await Pipeline.load(model);
    }
    const r = await erase({ model, pipeline: p, out, ...argsToOptions(cases[name].args) });
    const want = cases[name].losses;
    expect(r.losses).toHaveLength(want.length);
    // Same random draws (one torch CPU generator, same order), same samples: losses agree closely.
    r.losses.forEach((l, i) => expect(Math.abs(l - want[i])).toBeLessThanOrEqual(1e-3 * Math.abs(want[i]) + 1e-9));
    const ours = (await loadSafetensors(out)).tensors;
    const ref = (await loadSafetensors(path.join(FIX, `${name}.safetensors`))).tensors;
    expect(Object.keys(ours).sort()).toEqual(Object.keys(ref).sort());
    let maxDiff = 0;
    let maxRef = 0;
    for (const k of Object.keys(ref)) {
      const a = (ours[k] as Tensor).data;
      const b = (ref[k] as Tensor).data;
      for (let i = 0; i < b.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        maxRef = Math.max(maxRef, Math.abs(b[i]));
      }
    }
    expect(maxRef).toBeGreaterThan(0);
    // Adam normalises gradients, so rounding-level differences move near-zero-gradient weights by
    // up to ~lr per step; everything stays within 1% of the largest update.
    expect(maxDiff).toBeLessThanOrEqual(0.01 * maxRef);
  });
});

describe('ESD parameter sets, delta files and reports', () => {
  const quick = { model: MODEL, concept: 'red circle', iterations: 2, ddimSteps: 4, lr: 1e-3 };

  test.each([
    ['esd-x', (k: string) => k.includes('.attn2.')],
    ['esd-x-strict', (k: string) => /\.attn2\.to_[kv]\./.test(k)],
    ['esd-u', (k: string) => !k.includes('.attn2.') && !/^unet\.(time_embedding|conv_norm_out|conv_out)\./.test(k)],
    ['esd-self', (k: string) => k.includes('.attn1.')],
    ['esd-all', () => true],
  ] as const)('%s trains exactly its parameter set', async (method, inSet) => {
    const out = path.join(work, `set-${method}.safetensors`);
    const r = await erase({ ...quick, pipeline: pipe, method, out });
    const keys = readSafetensorsHeader(out).tensors.map((t) => t.name);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith('unet.') && inSet(k))).toBe(true);
    const all = Object.keys((await loadSafetensors(path.join(MODEL, 'unet', 'diffusion_pytorch_model.safetensors'))).tensors);
    expect(keys.length).toBe(all.filter((k) => inSet(`unet.${k}`)).length);
    expect(r.trainedParameters).toBeGreaterThan(0);
  });

  test('the delta carries its provenance and the report its loss curve', async () => {
    const out = path.join(work, 'meta.safetensors');
    const r = await erase({ ...quick, pipeline: pipe, method: 'esd-x', concept: 'red circle, star', out });
    const info = readDeltaInfo(out);
    expect(info.method).toBe('esd-x');
    expect(info.concepts).toEqual(['red circle', 'star']);
    expect(info.formatVersion).toBe('2');
    expect(info.baseFingerprints).toEqual({ unet: expect.stringMatching(/^[0-9a-f]{64}$/) });  // esd-x touches the UNet only
    expect(JSON.parse(info.metadata.hyperparameters)).toMatchObject({ iterations: 2, lr: 1e-3, ddimSteps: 4, eta: 1 });
    const report = JSON.parse(fs.readFileSync(r.report, 'utf8'));
    expect(report.lossCurve).toHaveLength(2);
    expect(report.breakdownSeconds).toHaveProperty('sampling');
    expect(report.versions.torch).toMatch(/^\d/);
  });

  test('applying a delta changes generation; export writes the same model as a folder', async () => {
    const out = path.join(work, 'apply.safetensors');
    await erase({ ...quick, pipeline: pipe, method: 'esd-x', lr: 1e-2, iterations: 3, out });
    const opts = { prompt: 'a red circle', steps: 3, height: 16, width: 16, seed: 2 };
    const base = await pipe.generate(opts);
    const erased = await Pipeline.load(MODEL, { deltas: [out] });
    const after = await erased.generate(opts);
    let diff = 0;
    base.images.data.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - after.images.data[i]))));
    expect(diff).toBeGreaterThan(1e-4);
    const merged = path.join(work, 'merged');
    await exportModel(MODEL, [out], merged);
    const fromExport = await (await Pipeline.load(merged)).generate(opts);
    let d2 = 0;
    fromExport.images.data.forEach((v, i) => (d2 = Math.max(d2, Math.abs(v - after.images.data[i]))));
    expect(d2).toBeLessThanOrEqual(1e-5);
  });

  test('lethe erase keeps the prompts given with --preserve ("" included) and records them', () => {
    const out = path.join(work, 'cli-preserve.safetensors');
    const r = runCli(['erase', '--model', MODEL, '--method', 'esd-x-strict', '--concept', 'red circle', '--preserve', '', '--preserve', 'blue star', '--preserve-weight', '2', '--iterations', '2', '--ddim-steps', '4', '--out', out, '--json']);
    expect(r.status).toBe(0);
    const report = JSON.parse(fs.readFileSync(out.replace('.safetensors', '.report.json'), 'utf8'));
    expect(report.hyperparameters).toMatchObject({ preserve: ['', 'blue star'], preserveWeight: 2 });
    const bad = runCli(['erase', '--model', MODEL, '--method', 'esd-x', '--concept', 'red circle', '--preserve', 'red circle', '--out', path.join(work, 'x.safetensors')]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/both a concept to erase and a prompt to preserve/);
  });

  test('a delta made from another base model is refused', async () => {
    const out = path.join(work, 'other.safetensors');
    await erase({ ...quick, pipeline: pipe, method: 'esd-x', out });
    const e = await expectCode(Pipeline.load(path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd2'), { deltas: [out] }), 'LETHE_BAD_CHECKPOINT');
    expect(e.message).toMatch(/another base model/);
  });
});

describe('ESD failure modes leave nothing half-written', () => {
  test('an abort stops with LETHE_CANCELLED and writes no delta and no report', async () => {
    const out = path.join(work, 'cancel.safetensors');
    const ac = new AbortController();
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'red', iterations: 500, ddimSteps: 10, out, signal: ac.signal, onProgress: (e) => e.step === 2 && ac.abort() }), 'LETHE_CANCELLED');
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.existsSync(out.replace('.safetensors', '.report.json'))).toBe(false);
  });

  test('a NaN loss stops with LETHE_NON_FINITE and writes nothing', async () => {
    const out = path.join(work, 'nan.safetensors');
    const e = await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-all', concept: 'red', iterations: 50, ddimSteps: 4, lr: 1e30, out }), 'LETHE_NON_FINITE');
    expect(e.message).toMatch(/nothing was written/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('an interrupted run resumes from its checkpoint to the same result', async () => {
    const opts = { model: MODEL, pipeline: pipe, method: 'esd-x' as const, concept: 'red, star', iterations: 40, ddimSteps: 6, lr: 1e-3, seed: 9 };
    const full = path.join(work, 'full.safetensors');
    await erase({ ...opts, out: full });
    const part = path.join(work, 'part.safetensors');
    const ac = new AbortController();
    await expectCode(erase({ ...opts, out: part, checkpointEvery: 2, signal: ac.signal, onProgress: (e) => e.step === 5 && ac.abort() }), 'LETHE_CANCELLED');
    expect(fs.existsSync(part.replace('.safetensors', '.ckpt.safetensors'))).toBe(true);
    const resumed = await erase({ ...opts, out: part, checkpointEvery: 2, resume: true });
    expect(resumed.losses).toHaveLength(40);
    const a = (await loadSafetensors(full)).tensors;
    const b = (await loadSafetensors(part)).tensors;
    for (const k of Object.keys(a)) expect(Buffer.from((b[k] as Tensor).data.buffer).equals(Buffer.from((a[k] as Tensor).data.buffer))).toBe(true);
    expect(fs.existsSync(part.replace('.safetensors', '.ckpt.safetensors'))).toBe(false);
  });

  test('bad arguments are refused with a clear code', async () => {
    const out = path.join(work, 'bad.safetensors');
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: ' , ', out }), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-z' as never, concept: 'red', out }), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'red', out, iterations: 0 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'red', out: path.join(work, 'x.bin') }), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'red', out, resume: true }), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'red', out, preserve: [''], preserveWeight: -1 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'red', out, preserve: [''], preserveProjection: -1 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'red', out, preserveProjection: 1 }), 'LETHE_BAD_ARGUMENT');  // nothing to keep
    const e = await expectCode(erase({ model: MODEL, pipeline: pipe, method: 'esd-u', concept: 'red', out, preserve: [''], preserveProjection: 1 }), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/to_k \/ to_v/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('closed-form preservation refits only the key/value deltas: the erased prompt keeps its edit, kept prompts lose theirs', async () => {
    const opts = { model: MODEL, pipeline: pipe, method: 'esd-x' as const, concept: 'red circle', iterations: 6, ddimSteps: 6, lr: 1e-3, seed: 9 };
    const kept = ['', 'blue star', 'a green square', 'yellow'];
    const plainOut = path.join(work, 'proj-plain.safetensors');
    const projOut = path.join(work, 'proj-10.safetensors');
    const plain = await erase({ ...opts, out: plainOut });
    const proj = await erase({ ...opts, out: projOut, preserve: kept.slice(0, 2), projectionKeep: kept.slice(2), preserveWeight: 0, preserveProjection: 10 });
    expect(proj.losses).toEqual(plain.losses);  // weight 0: the reference's loop and random stream; the projection comes after
    const a = (await loadSafetensors(plainOut)).tensors;
    const b = (await loadSafetensors(projOut)).tensors;
    const states = async (p: string) => (await pipe.encodePrompt([p])).data as Float32Array;
    const erased = await states('red circle');
    const keptStates = await Promise.all(kept.map(states));
    // |D s| summed over a prompt's token states, for the plain delta D and the refitted one D'.
    const response = (d: Tensor, s: Float32Array) => {
      const [rows, dim] = d.shape;
      let sum = 0;
      for (let t = 0; t < s.length / dim; t++)
        for (let r = 0; r < rows; r++) {
          let v = 0;
          for (let j = 0; j < dim; j++) v += d.data[r * dim + j] * s[t * dim + j];
          sum += v * v;
        }
      return sum;
    };
    let refitted = 0;
    let erasedPlain = 0, erasedProj = 0, keptPlain = 0, keptProj = 0;
    for (const k of Object.keys(a)) {
      const same = Buffer.from((a[k] as Tensor).data.buffer).equals(Buffer.from((b[k] as Tensor).data.buffer));
      if (!/\.attn2\.to_[kv]\.weight$/.test(k)) {
        expect(same).toBe(true);  // to_q, to_out: untouched
        continue;
      }
      expect(same).toBe(false);
      refitted++;
      erasedPlain += response(a[k] as Tensor, erased);
      erasedProj += response(b[k] as Tensor, erased);
      for (const s of keptStates) keptPlain += response(a[k] as Tensor, s), keptProj += response(b[k] as Tensor, s);
    }
    expect(refitted).toBeGreaterThan(0);
    const erasedKept = Math.sqrt(erasedProj / erasedPlain);
    const keptKept = Math.sqrt(keptProj / keptPlain);
    expect(keptKept).toBeLessThan(0.5 * erasedKept);
    expect(erasedKept).toBeGreaterThan(0.3);
    const report = JSON.parse(fs.readFileSync(proj.report, 'utf8'));
    expect(report.hyperparameters).toMatchObject({ preserve: kept.slice(0, 2), projectionKeep: kept.slice(2), preserveWeight: 0, preserveProjection: 10 });
  });
});
