import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import sharp from 'sharp';
import { Worker } from 'worker_threads';
import { benchMatmul, nativeInfo } from '../src';
import { expectCode, ROOT, tmpDir } from './helpers';

describe('nativeInfo', () => {
  test('reports torch, CUDA and threads from the main thread', () => {
    const info = nativeInfo();
    expect(info.torchVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof info.cudaCompiled).toBe('boolean');
    expect(info.cudaAvailable).toBe(info.cudaDeviceCount > 0);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    expect(info.libtorchPath).toMatch(/libtorch_cpu\.so$/);
  });

  test('works from two worker_threads at once (context-aware addon)', async () => {
    // Workers load the built package (dist/), as a user's worker would.
    const code = `
      const { parentPort } = require('worker_threads');
      const lethe = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      const info = lethe.nativeInfo();
      lethe.benchMatmul({ size: 64, seconds: 0.2 }).then(
        (b) => parentPort.postMessage({ info, iterations: b.iterations }),
        (e) => parentPort.postMessage({ error: String(e) }));`;
    const run = () =>
      new Promise<{ info: { torchVersion: string }; iterations: number; error?: string }>((resolve, reject) => {
        const w = new Worker(code, { eval: true });
        w.once('message', (m) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
      });
    const [a, b] = await Promise.all([run(), run()]);
    expect(a.error).toBeUndefined();
    expect(b.error).toBeUndefined();
    expect(a.info.torchVersion).toBe(nativeInfo().torchVersion);
    expect(b.info.torchVersion).toBe(nativeInfo().torchVersion);
    expect(a.iterations).toBeGreaterThan(0);
    expect(b.iterations).toBeGreaterThan(0);
  });

  test('JS threads keep their torch work serial, also after large tensor work on them', () => {
    // libtorch sets a thread's OpenMP count lazily, on its first parallel op; without the addon
    // running that first, the JS thread's first large op raised it to the process count, made a
    // second OpenMP team, and every later job of the process ran at about half speed on 2 cores.
    // A fresh process, so this thread's first torch work happens here; a worker thread as well.
    // The same probe on the main thread and in a worker: large tensor work, then the thread's count.
    const probe = `
      const lethe = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      const { native } = require(${JSON.stringify(path.join(ROOT, 'dist', 'native.js'))});
      const big = (v) => ({ dtype: 'float32', shape: [1 << 20], data: new Float32Array(1 << 20).fill(v) });
      const probe = () => ({ n: native().gradientSurgery(big(1), big(-1), 1).data.length, threads: lethe.nativeInfo().jsThreadTorchThreads });`;
    const script = `${probe}
      const { Worker } = require('worker_threads');
      lethe.setThreads(2);
      lethe.benchMatmul({ size: 64, seconds: 0.1 }).then(() => {
        const main = probe();
        const w = new Worker(${JSON.stringify(probe)} + "require('worker_threads').parentPort.postMessage(probe());", { eval: true });
        w.once('message', (worker) => { console.log(JSON.stringify({ main, worker, torchThread: lethe.nativeInfo().threads })); w.terminate(); });
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout.trim())).toEqual({ main: { n: 1 << 20, threads: 1 }, worker: { n: 1 << 20, threads: 1 }, torchThread: 2 });
  });

  test('the package loads with require and with import', () => {
    const esm = spawnSync(process.execPath, ['--input-type=module', '-e', "import { nativeInfo, inspect } from 'lethe'; console.log(typeof nativeInfo, typeof inspect, nativeInfo().torchVersion)"], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(esm.stderr).toBe('');
    expect(esm.stdout.trim()).toBe(`function function ${nativeInfo().torchVersion}`);
    const cjs = spawnSync(process.execPath, ['-e', "console.log(typeof require('lethe').nativeInfo)"], { cwd: ROOT, encoding: 'utf8' });
    expect(cjs.stdout.trim()).toBe('function');
  });
});

describe('async native jobs', () => {
  test('keep the event loop responsive and report progress', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const events: { step: number; gflops: number }[] = [];
    const started = Date.now();
    const r = await benchMatmul({ size: 256, seconds: 1, onProgress: (e) => events.push(e as never) });
    const elapsed = Date.now() - started;
    clearInterval(timer);
    expect(r.iterations).toBeGreaterThan(0);
    expect(r.gflops).toBeGreaterThan(0);
    expect(events.length).toBeGreaterThan(0);
    expect(events[events.length - 1].step).toBeLessThanOrEqual(r.iterations);
    expect(events.every((e) => e.gflops > 0)).toBe(true);
    // A blocked loop would fire the 10 ms timer about once; a free one about elapsed/10 times.
    expect(ticks).toBeGreaterThan(Math.min(20, elapsed / 40));
  });

  test('an abort stops a running job promptly with LETHE_CANCELLED', async () => {
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 200);
    // Would run 60 s if the abort were ignored.
    await expectCode(benchMatmul({ size: 128, seconds: 60, signal: ac.signal }), 'LETHE_CANCELLED');
    expect(Date.now() - started).toBeLessThan(20000);
  });

  test('an already-aborted signal never starts the job', async () => {
    const ac = new AbortController();
    ac.abort();
    await expectCode(benchMatmul({ size: 64, seconds: 5, signal: ac.signal }), 'LETHE_CANCELLED');
  });

  test('bad arguments are rejected with LETHE_BAD_ARGUMENT and a device that is not there with LETHE_DEVICE', async () => {
    await expectCode(() => benchMatmul({ size: -3 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(() => benchMatmul({ dtype: 'int8' as never }), 'LETHE_BAD_ARGUMENT');
    if (!nativeInfo().cudaAvailable) await expectCode(() => benchMatmul({ device: 'cuda:0' }), 'LETHE_DEVICE');
    await expectCode(() => benchMatmul({ device: 'tpu' }), 'LETHE_DEVICE');
  });
});

describe('queued native jobs hold no libuv thread', () => {
  test('while 8 jobs wait for the torch thread, fs, zlib and sharp in the same process finish in well under a second', async () => {
    // libuv's pool has 4 threads: a job that blocked one while it waits would starve fs/zlib/sharp.
    const dir = tmpDir();
    const file = path.join(dir, 'data.bin');
    fs.writeFileSync(file, Buffer.alloc(1 << 16, 7));
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
    const jobs = Array.from({ length: 8 }, () => benchMatmul({ size: 128, seconds: 0.5 }));
    const timed = async (work: () => Promise<unknown>) => {
      const t0 = performance.now();
      await work();
      return performance.now() - t0;
    };
    await new Promise((r) => setTimeout(r, 100));  // the jobs are queued and the first one runs
    const ms = {
      fs: await timed(() => fs.promises.readFile(file)),
      zlib: await timed(() => new Promise((resolve, reject) => zlib.gzip(Buffer.alloc(1 << 20, 3), (e, b) => (e ? reject(e) : resolve(b))))),
      sharp: await timed(() => sharp(png).resize(32, 32).png().toBuffer()),
    };
    const settledEarly = await Promise.race([Promise.all(jobs).then(() => true), new Promise((r) => setTimeout(() => r(false), 0))]);
    expect(settledEarly).toBe(false);  // the measurements above ran while jobs were still queued
    await Promise.all(jobs);
    fs.rmSync(dir, { recursive: true, force: true });
    for (const [what, t] of Object.entries(ms)) expect([what, t < 500]).toEqual([what, true]);
  });

  test('terminating a worker_thread while its job runs cancels the job; the process goes on', async () => {
    const code = `
      const { parentPort } = require('worker_threads');
      const lethe = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      lethe.benchMatmul({ size: 128, seconds: 60, onProgress: () => parentPort.postMessage('running') });`;
    const w = new Worker(code, { eval: true });
    await new Promise((resolve) => w.once('message', resolve));
    await w.terminate();
    // The torch thread is free again once the cancelled job stops: a new job runs at once.
    const t0 = Date.now();
    const r = await benchMatmul({ size: 64, seconds: 0.2 });
    expect(r.iterations).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(20000);
  });
});

describe('argument errors in a job with a progress callback', () => {
  test('do not keep the process alive (the progress function is released)', () => {
    const r = spawnSync(process.execPath, ['-e', "require('lethe').benchMatmul({ size: -1, onProgress() {} }).catch((e) => console.log(e.code))"], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 30000,
    });
    expect(r.stdout.trim()).toBe('LETHE_BAD_ARGUMENT');
    expect(r.status).toBe(0);
  });
});
