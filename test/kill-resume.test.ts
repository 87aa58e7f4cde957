// kill -9 at any point: an erasure with a checkpoint every iteration is killed with SIGKILL at a
// seeded random moment (so also while a checkpoint, the delta or the report is being written),
// then resumed as a user would (--resume when a checkpoint exists, else a fresh start), killed
// again on some seeds, until it finishes. The delta must equal an uninterrupted run's bit for bit,
// and nothing but the delta and its report may be left in the folder. Also: two erasures to the
// same output at once (one wins, the other is refused with LETHE_BUSY).
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { loadSafetensors } from '../src';
import { rng, ROOT, tmpDir } from './helpers';

jest.setTimeout(600000);

const CLI = path.join(ROOT, 'bin', 'lethe.js');
const MODEL = path.join(ROOT, 'test', 'fixtures', 'models', 'tiny-sd1');
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const args = (out: string, extra: string[] = [], iterations = 12) => [
  CLI, 'erase', '--model', MODEL, '--concept', 'red, star', '--iterations', String(iterations), '--ddim-steps', '4', '--lr', '1e-3', '--seed', '9', '--out', out, ...extra,
];

/** Runs the CLI and SIGKILLs it after `ms`; resolves with whether it had finished first. */
function runAndKill(argv: string[], ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

async function tensorBytes(file: string): Promise<Record<string, Buffer>> {
  const t = (await loadSafetensors(file)).tensors;
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength)]));
}

test('20 runs killed with SIGKILL at random moments resume to the uninterrupted delta, bit for bit, leaving nothing behind', async () => {
  const reference = path.join(work, 'reference.safetensors');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, args(reference, ['--checkpoint-every', '1']), { encoding: 'utf8' });
  expect(r.status).toBe(0);
  const duration = Date.now() - t0;
  const want = await tensorBytes(reference);

  const random = rng(2026);
  const outcomes: string[] = [];
  for (let seed = 0; seed < 20; seed++) {
    const dir = path.join(work, `run-${seed}`);
    const out = path.join(dir, 'delta.safetensors');
    const ckpt = path.join(dir, 'delta.ckpt.safetensors');
    // Anywhere from start-up to the end of the run; a run that finished first (the machine got
    // faster than the reference run) is done again, sooner, so every seed is interrupted at least
    // once. Every third seed is killed twice.
    let kills = 0;
    let finished = true;
    for (let attempt = 0; finished && attempt < 6; attempt++) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      finished = await runAndKill(args(out, ['--checkpoint-every', '1']), Math.floor(random() * duration * 0.5 ** attempt));
    }
    if (!finished) kills++;
    while (!finished) {
      const resume = fs.existsSync(ckpt) ? ['--resume'] : [];
      if (seed % 3 === 0 && kills < 2) {
        finished = await runAndKill(args(out, ['--checkpoint-every', '1', ...resume]), Math.floor(random() * duration));
        if (!finished) kills++;
        continue;
      }
      const again = spawnSync(process.execPath, args(out, ['--checkpoint-every', '1', ...resume]), { encoding: 'utf8' });
      expect([seed, again.status, again.stderr.split('\n').filter((l) => l.includes('LETHE_')).join(' ')]).toEqual([seed, 0, '']);
      finished = true;
    }
    outcomes.push(`${seed}:${kills}`);
    const got = await tensorBytes(out);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const k of Object.keys(want)) expect([seed, k, got[k].equals(want[k])]).toEqual([seed, k, true]);
    expect([seed, fs.readdirSync(dir).sort()]).toEqual([seed, ['delta.report.json', 'delta.safetensors']]);
  }
  // The harness must really have interrupted every run (not only watched them finish).
  expect(outcomes.filter((o) => o.endsWith(':0'))).toEqual([]);
});

test("the next run removes a killed run's temporaries beside its outputs, and never a live process's", async () => {
  const dir = path.join(work, 'stale');
  fs.mkdirSync(dir);
  const out = path.join(dir, 'delta.safetensors');
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    const stale = [`delta.ckpt.safetensors.tmp-${deadPid}-12345`, `delta.safetensors.tmp-${deadPid}-9`, `delta.report.json.tmp-${deadPid}`];
    const kept = [`delta.ckpt.safetensors.tmp-${live.pid}-1`, 'other.safetensors.tmp-1-1'];
    for (const f of [...stale, ...kept]) fs.writeFileSync(path.join(dir, f), 'half a file');
    const r = spawnSync(process.execPath, args(out), { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['delta.report.json', 'delta.safetensors', ...kept].sort());
  } finally {
    live.kill('SIGKILL');
  }
});

describe('two erasures to the same output', () => {
  const exit = (child: ReturnType<typeof spawn>, stderr: string[]) =>
    new Promise<number>((resolve) => {
      child.stderr?.on('data', (d) => stderr.push(String(d)));
      child.on('exit', (code) => resolve(code ?? 1));
    });

  test('started together in two processes: one wins with a whole delta, the other is refused with LETHE_BUSY naming the winner', async () => {
    const dir = path.join(work, 'race');
    fs.mkdirSync(dir);
    const out = path.join(dir, 'delta.safetensors');
    const errs: string[][] = [[], []];
    const children = [0, 1].map(() => spawn(process.execPath, args(out, ['--checkpoint-every', '5'], 40), { stdio: ['ignore', 'ignore', 'pipe'] }));
    const codes = await Promise.all(children.map((c, i) => exit(c, errs[i])));
    expect([...codes].sort()).toEqual([0, 1]);
    const loser = codes.indexOf(1);
    const message = errs[loser].join('');
    expect(message).toMatch(/LETHE_BUSY/);
    expect(message).toContain(`process ${children[1 - loser].pid}`);
    // The delta is the winner's, whole; no lock, checkpoint or temporary is left.
    expect(Object.keys((await loadSafetensors(out)).tensors).length).toBeGreaterThan(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['delta.report.json', 'delta.safetensors']);
  });

  test('in one process the second is refused too; a lock left by a killed run is taken over', async () => {
    const { erase } = await import('../src');
    const dir = path.join(work, 'race-in-process');
    fs.mkdirSync(dir);
    const out = path.join(dir, 'delta.safetensors');
    const o = { model: MODEL, concept: 'red, star', iterations: 30, ddimSteps: 4, lr: 1e-3, seed: 9, out };
    const first = erase(o);
    await expect(erase(o)).rejects.toMatchObject({ code: 'LETHE_BUSY' });
    await first;
    expect(fs.existsSync(`${out}.lock`)).toBe(false);
    const dead = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
    fs.writeFileSync(`${out}.lock`, `${dead}\n`);
    await erase({ ...o, iterations: 2 });
    expect(fs.readdirSync(dir).sort()).toEqual(['delta.report.json', 'delta.safetensors']);
  });
});
