// The shapes world in motion: clips, their captions, and the centroid judge of their motion.
import { CLIP_FRAMES, IMAGE_SIZE, MOTIONS, MOTION_TRAVEL, Rng, judgeMotion, objectCentroid, renderClip, sampleClipSpec } from '../src/world';
import { expectCode } from './helpers';

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
