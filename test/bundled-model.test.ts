import * as fs from 'fs';
import * as path from 'path';
import { classifierAccuracy, classify, defaultClassifierDir } from '../src/classifier';
import { DEFAULT_MODEL_DIR, Pipeline } from '../src';
import { runCli, tmpDir } from './helpers';

describe('the bundled default model', () => {
  test('its classifier is at least 98% accurate per head on freshly rendered images', async () => {
    const acc = await classifierAccuracy(defaultClassifierDir(), 600, 424242);
    expect(acc.shape).toBeGreaterThanOrEqual(0.98);
    expect(acc.color).toBeGreaterThanOrEqual(0.98);
    expect(acc.style).toBeGreaterThanOrEqual(0.98);
    expect(acc.poster).toBeGreaterThanOrEqual(0.98);
  });

  test('it loads by name and its images are recognised (8 per prompt; chance would give about 1 in 8)', async () => {
    const pipe = await Pipeline.load('default');
    expect(pipe.dir).toBe(DEFAULT_MODEL_DIR);
    for (const [prompt, shape] of [
      ['a red circle', 'circle'],
      ['a blue star', 'star'],
      ['Sunny', 'sunny'],
    ] as const) {
      const g = await pipe.generate({ prompt, n: 8, steps: 20, guidance: 5, seed: 7 });
      const judged = await classify(g.images);
      const hits = judged.filter((j) => j.shape === shape).length;
      expect({ prompt, hits: hits >= 5 }).toEqual({ prompt, hits: true });
    }
  });

  test('lethe demo --method ca-model: Concept Ablation turns Sunny into a yellow face, judged with the anchor rate', () => {
    const out = path.join(tmpDir(), 'demo-ca');
    // A demo is minutes of work on two busy cores: the CLI gets 15 minutes, not runCli's 5 (a
    // timed-out demo is interrupted and exits 1).
    const r = runCli(['demo', '--method', 'ca-model', '--iterations', '3', '--anchor-images', '4', '--n', '1', '--out', out, '--json'], { timeoutMs: 900000 });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.summary.concept).toBe('Sunny');
    expect(j.summary.anchor).toMatchObject({ text: 'a yellow face', expect: { shape: 'face', color: 'yellow' } });
    const report = JSON.parse(fs.readFileSync(path.join(out, 'erase-report.json'), 'utf8'));
    expect(report.method).toBe('ca-model');
    expect(report.hyperparameters.targetPrompts).toEqual(['Sunny', 'a picture of Sunny', 'a drawing of Sunny']);
    expect(report.hyperparameters.anchorPrompts).toEqual(['a yellow face', 'a picture of a yellow face', 'a drawing of a yellow face']);
    expect(report.hyperparameters).toMatchObject({ preserveProjection: 20, projectionWeighting: 'text-padding' });  // the measured defaults (docs/ca.md)
    expect(fs.readFileSync(path.join(out, 'index.html'), 'utf8')).toMatch(/anchor: a yellow face/);
  }, 900000);

  test('lethe demo erases, evaluates and writes its report folder', () => {
    const out = path.join(tmpDir(), 'demo');
    const r = runCli(['demo', '--iterations', '10', '--n', '2', '--out', out, '--json'], { timeoutMs: 900000 });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.summary.concept).toBe('circle');
    expect(fs.readdirSync(out).sort()).toEqual(['delta.safetensors', 'erase-report.json', 'grids', 'index.html', 'results.json']);
    // ESD at the bundled model's measured defaults, trained on the concept as the captions phrase it
    const report = JSON.parse(fs.readFileSync(path.join(out, 'erase-report.json'), 'utf8'));
    expect(report.method).toBe('esd-x-strict');
    expect(report.concepts).toEqual(['circle']);
    expect(report.hyperparameters.trainedOn).toEqual(['a circle']);
    expect(report.defaults.sources).toMatchObject({ lr: 'model', ddimSteps: 'model', iterations: 'given', worldPrompts: 'model' });
    // ...keeping the unconditional prompt and the other concepts
    expect(report.hyperparameters.preserve).toEqual(expect.arrayContaining(['', 'a square', 'striped', 'Sunny']));
    expect(report.hyperparameters.preserve).not.toContain('a circle');
    // ...and, in the closed-form refit, the siblings' captions too (never an evaluation prompt)
    expect(report.hyperparameters).toMatchObject({ preserveWeight: 1, preserveProjection: 2, lr: 0.0015 });
    expect(report.hyperparameters.projectionKeep).toEqual(expect.arrayContaining(['a red face', 'a yellow square']));
    expect(report.hyperparameters.projectionKeep).not.toContain('a yellow face');
  }, 900000);
});
