/**
 * The shared training loop (native/train/trainer.h) on a problem checked by hand
 * (native/train/trainer_probe_js.cc): several objectives and optimizers in one step, a gradient
 * edit between two objectives (gradient surgery), optimizers that only see their own parameters,
 * and checkpoints of every optimizer.
 */
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../src/native';
import type { Tensor } from '../src';
import { expectCode, tmpDir } from './helpers';

interface ProbeResult {
  params: Record<string, Tensor>;
  firstGrads: Record<string, Tensor>;
  terms: number[];
}
const probe = (o: object) => (native() as unknown as { trainerProbe(o: object): Promise<ProbeResult> }).trainerProbe(o);
const arr = (t: Tensor) => Array.from(t.data as Float32Array);

// The probe's problem (same numbers as trainer_probe_js.cc).
const a = [0.5, -1, 2], b = [1, 1], d = [0.3, -0.2];
const t1 = [1, 0, 1], t2 = [0, 2], t3 = [0, -2, 3], t4 = [1, 1];
const sub = (x: number[], y: number[]) => x.map((v, i) => v - y[i]);
const scale = (x: number[], s: number) => x.map((v) => v * s);
const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i], 0);

describe('the training loop with several objectives and optimizers', () => {
  test('each optimizer gets the gradient of its own objectives; the edit sees both objectives per tensor', async () => {
    for (const lambda of [1, 0.5]) {
      const r = await probe({ steps: 1, lambda });
      const gu = scale(sub(a, t1), 2), gp = scale(sub(a, t3), 2);
      expect(dot(gu, gp)).toBeLessThan(0);  // the two objectives conflict on a
      const edited = sub(gu, scale(gp, (lambda * dot(gu, gp)) / dot(gp, gp))).map((v, i) => v + gp[i]);
      arr(r.firstGrads.a).forEach((v, i) => expect(v).toBeCloseTo(edited[i], 5));
      // b is reached by the unlearning objective only: the edit gets an undefined second gradient.
      arr(r.firstGrads.b).forEach((v, i) => expect(v).toBeCloseTo(2 * (b[i] - t2[i]), 5));
      // The aux objective reads a too, but only its own optimizer's parameter d is trained by it.
      const s = a.reduce((x, y) => x + y, 0);
      arr(r.firstGrads.d).forEach((v, i) => expect(v).toBeCloseTo(2 * (d[i] * s - t4[i]) * s, 5));
      expect(r.terms.slice(0, 3).map((v) => Number(v.toFixed(6)))).toEqual([
        Number((dot(sub(a, t1), sub(a, t1)) + dot(sub(b, t2), sub(b, t2))).toFixed(6)),
        Number(dot(sub(a, t3), sub(a, t3)).toFixed(6)),
        Number(dot(sub(scale(d, s), t4), sub(scale(d, s), t4)).toFixed(6)),
      ]);
    }
  });

  test('every optimizer is checkpointed: a resumed run ends bit for bit where an uninterrupted one does', async () => {
    const dir = tmpDir();
    const ckpt = path.join(dir, 'probe.safetensors');
    const full = await probe({ steps: 6 });
    await expectCode(probe({ steps: 6, checkpoint: ckpt, stopAfter: 3 }), 'LETHE_CANCELLED');
    expect(fs.existsSync(ckpt)).toBe(true);
    const resumed = await probe({ steps: 6, checkpoint: ckpt, resume: true });
    for (const k of ['a', 'b', 'd']) expect([k, arr(resumed.params[k])]).toEqual([k, arr(full.params[k])]);
    expect(arr(full.params.d)).not.toEqual(d);  // the aux optimizer did step
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
