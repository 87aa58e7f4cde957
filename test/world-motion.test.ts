// The shapes world in motion: clips, their captions, and the centroid judge of their motion.
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { CLIP_FRAMES, IMAGE_SIZE, MOTIONS, MOTION_TRAVEL, Rng, judgeMotion, objectCentroid, renderClip, renderClipDataset, sampleClipSpec } from '../src/world';
import { expectCode, runCli, tmpDir } from './helpers';

const FRAME = IMAGE_SIZE * IMAGE_SIZE * 3;

describe('video world clips', () => {
  test('deterministic; attributes constant; the track moves as the caption says', async () => {
    const a = sampleClipSpec(new Rng(7));
    const b = sampleClipSpec(new Rng(7));
    expect(a).toEqual(b);
    expect(Buffer.from(await renderClip(a)).equals(Buffer.from(await renderClip(b)))).toBe(true);
    for (const motion of MOTIONS) {
      const c = sampleClipSpec(new Rng(11), { motion, shape: 'star', color: 'red', style: 'striped' });
      expect(c.track).toHaveLength(CLIP_FRAMES);
      if (motion === 'still') expect(c.caption).not.toMatch(/moving/);
      else expect(c.caption).toMatch(new RegExp(`moving ${motion}$`));
      const dx = c.track[CLIP_FRAMES - 1].cx - c.track[0].cx;
      const dy = c.track[CLIP_FRAMES - 1].cy - c.track[0].cy;
      expect(Math.hypot(dx, dy)).toBeCloseTo(motion === 'still' ? 0 : MOTION_TRAVEL, 6);
    }
  });

  test('Sunny moves too; the poster is refused, as are bad frame counts and motions', async () => {
    const s = sampleClipSpec(new Rng(3), { kind: 'sunny', motion: 'up' });
    expect(s.caption).toMatch(/Sunny moving up$/);
    await expectCode(() => sampleClipSpec(new Rng(3), { kind: 'poster' }), 'LETHE_BAD_ARGUMENT');
    await expectCode(() => sampleClipSpec(new Rng(3), { frames: 1 }), 'LETHE_BAD_ARGUMENT');
    await expectCode(() => sampleClipSpec(new Rng(3), { motion: 'sideways' as never }), 'LETHE_BAD_ARGUMENT');
  });

  test('the judge reads the rendered motion of 100 random clips correctly, every one', async () => {
    const wrong: string[] = [];
    for (let i = 0; i < 100; i++) {
      const clip = sampleClipSpec(new Rng(1000 + i));
      const frames = await renderClip(clip);
      const j = judgeMotion(frames, CLIP_FRAMES);
      if (j.motion !== clip.motion) wrong.push(`${i}: ${clip.caption} judged ${j.motion} (${j.dx.toFixed(1)}, ${j.dy.toFixed(1)})`);
    }
    expect(wrong).toEqual([]);
  });

  test('frames are not all the same when the object moves, and the judge refuses a wrong size', async () => {
    const clip = sampleClipSpec(new Rng(5), { motion: 'right', shape: 'circle' });
    const frames = await renderClip(clip);
    const first = objectCentroid(frames, IMAGE_SIZE, 0)!;
    const last = objectCentroid(frames, IMAGE_SIZE, (CLIP_FRAMES - 1) * FRAME)!;
    expect(last.cx - first.cx).toBeGreaterThan(MOTION_TRAVEL * 0.8);
    expect(Math.abs(last.cy - first.cy)).toBeLessThan(1);
    expect(objectCentroid(new Uint8Array(FRAME).fill(255))).toBeNull();
    expect(judgeMotion(new Uint8Array(2 * FRAME).fill(255), 2).motion).toBeNull();
    await expectCode(() => judgeMotion(frames.subarray(0, FRAME * 3 - 1), 3), 'LETHE_SHAPE_MISMATCH');
  });
});

describe('clip datasets', () => {
  test('animated WebPs whose decoded frames show the recorded motion; written atomically; the CLI', async () => {
    const out = path.join(tmpDir('lethe-clips-'), 'clips');
    const r = await renderClipDataset({ n: 12, seed: 3, outDir: out });
    expect(r.frames).toBe(CLIP_FRAMES);
    const records = fs.readFileSync(path.join(out, 'clips.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; frames: string; motion: string; caption: string });
    expect(records).toHaveLength(12);
    const counts = JSON.parse(fs.readFileSync(path.join(out, 'world.json'), 'utf8')).counts as Record<string, number>;
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(12);
    for (const rec of records) {
      // A moving clip's WebP has every frame; a still one's frames are identical and WebP folds them.
      const pages = (await sharp(path.join(out, rec.file), { animated: true }).metadata()).pages ?? 1;
      expect(pages).toBe(rec.motion === 'still' ? 1 : CLIP_FRAMES);
      const data = await sharp(path.join(out, rec.frames)).removeAlpha().raw().toBuffer();
      expect(judgeMotion(new Uint8Array(data.buffer, data.byteOffset, data.length), CLIP_FRAMES).motion).toBe(rec.motion);
    }
    await expectCode(renderClipDataset({ n: 2, seed: 3, outDir: out }), 'LETHE_BAD_ARGUMENT');
    expect(fs.readdirSync(path.dirname(out))).toEqual(['clips']);
    const cli = runCli(['world', 'render', '--n', '3', '--frames', '4', '--motion', 'left', '--out', path.join(path.dirname(out), 'cli'), '--json']);
    expect(cli.status).toBe(0);
    expect(JSON.parse(cli.stdout).counts.left).toBe(3);
    const poster = runCli(['world', 'render', '--n', '1', '--frames', '4', '--kind', 'poster', '--out', path.join(path.dirname(out), 'poster')]);
    expect(poster.status).not.toBe(0);
    expect(fs.existsSync(path.join(path.dirname(out), 'poster'))).toBe(false);
  });
});
