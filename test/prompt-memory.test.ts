/**
 * Learnable prompt memory (src/erase/methods/prompt-memory.ts, native/erase/prompt_memory.cc): the
 * native loop against the reference loop on PyTorch + diffusers (scripts/prompt_memory_reference.py,
 * fixtures by scripts/make_prompt_memory_fixtures.py), continual erasure, and what the delta's
 * memory does in generate and export.
 */
import * as fs from 'fs';
import * as path from 'path';
import { erase, loadSafetensors, Pipeline, readDeltaInfo, readSafetensorsHeader, type Tensor } from '../src';
import { exportModel } from '../src/erase/export';
import { expectCode, expectSameDelta, maxAbsDiff, ROOT, runCli, tmpDir } from './helpers';

const MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
const OTHER = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd2');
const FIX = path.join(ROOT, 'test', 'fixtures', 'prompt-memory');
const fixtures = JSON.parse(fs.readFileSync(path.join(FIX, 'cases.json'), 'utf8')) as { cases: Record<string, { args: string[]; losses: number[] }> };
const work = tmpDir();
let pipe: Pipeline;
beforeAll(async () => {
  pipe = await Pipeline.load(MODEL);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const out = (name: string) => path.join(work, `${name}.safetensors`);

/** The reference script's flags as erase() options (the continual case's start is Lethe's own first delta). */
function optionsOf(args: string[]) {
  const get = (k: string) => args[args.indexOf(k) + 1];
  const num = (k: string) => Number(get(k));
  const preserve = args.flatMap((a, i) => (a === '--preserve' ? [args[i + 1]] : []));
  return {
    method: 'prompt-memory',
    concept: get('--concept'),
    iterations: num('--iterations'),
    transferIterations: num('--transfer-iterations'),
    lr: num('--lr'),
    promptLr: num('--prompt-lr'),
    promptTokens: num('--prompt-tokens'),
    placement: get('--placement'),
    ddimSteps: num('--ddim-steps'),
    seed: num('--seed'),
    ...(preserve.length ? { preserve, preserveWeight: num('--preserve-weight') } : { preserveWeight: 0 }),
    ...(args.includes('--start') ? { extend: out(get('--start')) } : {}),
    erasureTrainsPrompt: args.includes('--erasure-trains-prompt'),
  };
}

const quick = { model: MODEL, method: 'prompt-memory', concept: 'red circle', iterations: 2, transferIterations: 2, ddimSteps: 4, lr: 1e-3, promptLr: 1e-2, promptTokens: 2, placement: 'mid' };

describe('prompt memory matches the reference loop on PyTorch + diffusers', () => {
  // In order: the continual case continues the first case's delta.
  test.each(Object.keys(fixtures.cases))('%s: same loss curve, the same weight deltas and the same prompt', async (name) => {
    const c = fixtures.cases[name];
    const r = await erase({ model: MODEL, pipeline: pipe, out: out(name), ...optionsOf(c.args) } as never);
    expect(r.losses).toHaveLength(c.losses.length);
    r.losses.forEach((l, i) => expect(Math.abs(l - c.losses[i])).toBeLessThanOrEqual(1e-3 * Math.abs(c.losses[i]) + 1e-9));
    const ours = (await loadSafetensors(out(name))).tensors;
    const ref = (await loadSafetensors(path.join(FIX, `${name}.safetensors`))).tensors;
    expectSameDelta(ours, ref);
    // The prompt on its own (its values are far from the weights' scale): within 1% of its largest change.
    for (const k of ['extra.prompt_memory.k', 'extra.prompt_memory.v']) {
      const a = ours[k] as Tensor;
      const b = ref[k] as Tensor;
      expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(0.01 * Math.max(...Array.from(b.data, Math.abs)));
    }
  });

  test('transfer and erasure steps interleave as specified, each training only its own part', async () => {
    const r = await erase({ ...quick, pipeline: pipe, iterations: 4, transferIterations: 2, out: out('interleave') } as never);
    // 6 steps, transfer where floor((s+1)*2/6) > floor(s*2/6): steps 2 and 5 (0-based).
    const isTransfer = r.terms.transfer.map((v) => v !== null && Number.isFinite(v));
    expect(isTransfer).toEqual([false, false, true, false, false, true]);
    expect(r.terms.erase.map((v) => v !== null && Number.isFinite(v))).toEqual(isTransfer.map((t) => !t));
    // One erasure step with and without a transfer step after it: the same first step (same draws),
    // so the weights agree bit for bit (a transfer step leaves them alone) and only the prompt moved.
    const none = await erase({ ...quick, pipeline: pipe, iterations: 1, transferIterations: 0, out: out('no-transfer') } as never);
    const some = await erase({ ...quick, pipeline: pipe, iterations: 1, transferIterations: 1, out: out('one-transfer') } as never);
    const a = (await loadSafetensors(none.delta)).tensors;
    const b = (await loadSafetensors(some.delta)).tensors;
    for (const k of Object.keys(a).filter((k) => k.startsWith('unet.'))) expect([k, maxAbsDiff(a[k] as Tensor, b[k] as Tensor)]).toEqual([k, 0]);
    expect(maxAbsDiff(a['extra.prompt_memory.k'] as Tensor, b['extra.prompt_memory.k'] as Tensor)).toBeGreaterThan(0);
    const report = JSON.parse(fs.readFileSync(none.report, 'utf8'));
    expect(report.hyperparameters).toMatchObject({ promptTokens: 2, placement: 'mid', transferIterations: 0, iterations: 1 });
    const meta = readSafetensorsHeader(none.delta).metadata;
    expect(JSON.parse(meta.prompt_memory_layers)).toEqual(['mid_block.attentions.0.transformer_blocks.0.attn2']);
  });
});

describe('continual erasure', () => {
  test('a later erasure continues the earlier delta: one delta holding both, the first kept as trained', async () => {
    const first = await erase({ ...quick, pipeline: pipe, out: out('first') } as never);
    const second = await erase({ ...quick, pipeline: pipe, concept: 'blue', iterations: 1, transferIterations: 0, lr: 1e-12, out: out('second'), extend: first.delta } as never);
    const info = readDeltaInfo(second.delta);
    expect(info.concepts).toEqual(['red circle', 'blue']);
    const report = JSON.parse(fs.readFileSync(second.report, 'utf8'));
    expect(report.hyperparameters.extends).toEqual(['red circle']);
    // At a vanishing lr (and no transfer step) the continued delta is the first one.
    const a = (await loadSafetensors(first.delta)).tensors;
    const b = (await loadSafetensors(second.delta)).tensors;
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    let worst = 0;
    for (const k of Object.keys(a)) worst = Math.max(worst, maxAbsDiff(a[k] as Tensor, b[k] as Tensor));
    expect(worst).toBeLessThan(1e-6);
  });

  test('what cannot be continued is refused by name, nothing written', async () => {
    const first = await erase({ ...quick, pipeline: pipe, out: out('base-for-refusals') } as never);
    const esd = await erase({ model: MODEL, pipeline: pipe, method: 'esd-x', concept: 'blue', iterations: 1, ddimSteps: 4, out: out('esd') });
    const refuse = async (name: string, extra: Record<string, unknown>, code: string, pattern: RegExp) => {
      const file = out(name);
      const e = await expectCode(erase({ ...quick, pipeline: pipe, concept: 'blue', out: file, ...extra } as never), code);
      expect(e.message).toMatch(pattern);
      expect(fs.existsSync(file)).toBe(false);
    };
    await refuse('from-esd', { extend: esd.delta }, 'LETHE_BAD_ARGUMENT', /made by esd-x; only a prompt-memory delta/);
    await refuse('other-size', { extend: first.delta, promptTokens: 3 }, 'LETHE_BAD_ARGUMENT', /prompt of 2 tokens placed 'mid', this run 3/);
    await refuse('same-concept', { extend: first.delta, concept: 'red circle' }, 'LETHE_BAD_ARGUMENT', /'red circle' is already erased/);
    await refuse('other-params', { extend: first.delta, params: 'esd-x-strict' }, 'LETHE_BAD_ARGUMENT', /which this run does not train/);
    const other = await Pipeline.load(OTHER);
    await refuse('other-model', { model: OTHER, pipeline: other, extend: first.delta }, 'LETHE_BAD_CHECKPOINT', /made from another base model/);
    await refuse('missing', { extend: out('nope') }, 'LETHE_IO', /nope/);
  });
});

describe('the delta in use', () => {
  test('generate applies the prompt; dropping it leaves the weights alone; export refuses it unless told to drop it', async () => {
    const r = await erase({ ...quick, pipeline: pipe, promptLr: 0.5, out: out('use') } as never);
    const settings = { prompt: 'red circle', steps: 3, seed: 1, guidance: 5 };
    const withMemory = await (await Pipeline.load(MODEL, { deltas: [r.delta] })).generate(settings);
    const dropped = await Pipeline.load(MODEL, { deltas: [r.delta], dropPromptMemory: true });
    const weightsOnly = await dropped.generate(settings);
    expect(maxAbsDiff(withMemory.latents, weightsOnly.latents)).toBeGreaterThan(1e-4);
    expect(dropped.deltas[0].droppedExtras).toEqual(['extra.prompt_memory.k', 'extra.prompt_memory.v']);
    // The sample cache tells the two apart.
    expect(await dropped.identity()).not.toEqual(await (await Pipeline.load(MODEL, { deltas: [r.delta] })).identity());

    const e = await expectCode(exportModel(MODEL, [r.delta], path.join(work, 'export-refused')), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/cannot represent.*--drop-prompt-memory/);
    expect(fs.existsSync(path.join(work, 'export-refused'))).toBe(false);
    const cli = runCli(['export', '--model', MODEL, '--delta', r.delta, '--out', path.join(work, 'export-weights'), '--drop-prompt-memory', '--json']);
    expect(cli.status).toBe(0);
    expect(JSON.parse(cli.stdout).droppedPromptMemory).toEqual([r.delta]);
    const exported = await (await Pipeline.load(path.join(work, 'export-weights'))).generate(settings);
    expect(maxAbsDiff(exported.latents, weightsOnly.latents)).toBeLessThan(1e-4);
  });

  test('bad input is refused with a code before any training', async () => {
    await expectCode(erase({ ...quick, pipeline: pipe, placement: 'nowhere.*', out: out('bad-place') } as never), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ ...quick, pipeline: pipe, promptTokens: 0, out: out('bad-tokens') } as never), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ ...quick, pipeline: pipe, concept: ' ', out: out('bad-concept') } as never), 'LETHE_BAD_ARGUMENT');
    await expectCode(erase({ ...quick, pipeline: pipe, preserve: ['red circle'], out: out('bad-preserve') } as never), 'LETHE_BAD_ARGUMENT');
    for (const f of ['bad-place', 'bad-tokens', 'bad-concept', 'bad-preserve']) expect(fs.existsSync(out(f))).toBe(false);
  });
});
