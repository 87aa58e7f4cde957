import * as fs from 'fs';
import * as path from 'path';
import { anchorExpectation, colorShapePrompts, conceptPromptSets, defaultPromptSet, misspellings, styleShapePrompts } from '../src/eval/prompts';
import { erasureTable, promptTable, writeErasureReport } from '../src/eval/report';
import { isTrainedPrompt, targetRate, type PromptResult } from '../src/eval/evaluate';
import { expectCode, tmpDir } from './helpers';

describe('evaluation prompt sets', () => {
  test('the default set: 42 color–shape prompts, 28 style prompts, Sunny, faces and the poster', () => {
    const set = defaultPromptSet();
    expect(set.filter((p) => p.group === 'color-shape')).toHaveLength(42);
    expect(set.filter((p) => p.group === 'style-shape')).toHaveLength(28);
    expect(set.map((p) => p.prompt)).toEqual(expect.arrayContaining(['Sunny', 'a face', 'the Lethe poster', 'an orange cross', 'a striped star']));
    expect(new Set(set.map((p) => p.prompt)).size).toBe(set.length);
  });

  test('concept sets name the target and keep related and unrelated apart from it', () => {
    const circle = conceptPromptSets('circle');
    expect(circle.target).toEqual({ shape: 'circle' });
    expect(circle.targetPrompts.every((p) => p.expect.shape === 'circle')).toBe(true);
    expect(circle.related.map((p) => p.expect.shape)).toEqual(['face', 'face']);
    expect(circle.unrelated.every((p) => p.expect.shape !== 'circle' && p.expect.shape !== 'face')).toBe(true);
    const sunny = conceptPromptSets('Sunny');
    expect(sunny.related.map((p) => p.prompt)).toEqual(['a face', 'a yellow face', 'a yellow circle']);
    const striped = conceptPromptSets('striped');
    expect(striped.targetPrompts).toHaveLength(7);
    expect(striped.related.every((p) => p.expect.style !== 'striped')).toBe(true);
    expect(striped.robustness.length).toBeGreaterThanOrEqual(3);
  });

  test('the text to erase is phrased as the captions phrase the concept', () => {
    expect(conceptPromptSets('circle').eraseText).toBe('a circle');
    expect(conceptPromptSets('Star').eraseText).toBe('a star');
    expect(conceptPromptSets('striped').eraseText).toBe('striped');
    expect(conceptPromptSets('outlined').eraseText).toBe('outlined');
    expect(conceptPromptSets('sunny').eraseText).toBe('Sunny');
  });

  test('the demo preserves "" and the other concepts, never the erased one nor an evaluation prompt', () => {
    for (const c of ['circle', 'triangle', 'face', 'striped', 'solid', 'Sunny']) {
      const sets = conceptPromptSets(c);
      expect(sets.preserve[0]).toBe('');
      expect(sets.preserve).not.toContain(sets.eraseText);
      expect(sets.preserve.length).toBeGreaterThanOrEqual(16);  // of 7 shapes + 6 colors + 4 styles + Sunny + poster, plus ""
      // The poster shows a circle and a triangle: kept, it drew their erased prompts to the memorized image.
      if (c === 'circle' || c === 'triangle') expect(sets.preserve).not.toContain('the Lethe poster');
      else expect(sets.preserve).toContain('the Lethe poster');
      const evaluated = [...sets.targetPrompts, ...sets.related, ...sets.unrelated, ...sets.robustness].map((p) => p.prompt);
      expect(sets.preserve.filter((p) => evaluated.includes(p))).toEqual([]);
    }
    expect(conceptPromptSets('circle').preserve).toEqual(expect.arrayContaining(['a square', 'yellow', 'dotted', 'Sunny']));
    expect(conceptPromptSets('circle').preserve).not.toContain('a face');  // a related prompt: held out
  });

  test("the projection also keeps the concept's siblings' captions, never an evaluation prompt", () => {
    const colorShape = new Set(colorShapePrompts().map((p) => p.prompt));
    const styleShape = new Set(styleShapePrompts().map((p) => p.prompt));
    for (const c of ['circle', 'face', 'striped', 'solid', 'Sunny']) {
      const sets = conceptPromptSets(c);
      const evaluated = new Set([...sets.targetPrompts, ...sets.related, ...sets.unrelated, ...sets.robustness].map((p) => p.prompt));
      expect(sets.preserveCaptions.length).toBeGreaterThan(0);
      for (const p of sets.preserveCaptions) {
        expect(sets.kind === 'style' ? styleShape.has(p) : colorShape.has(p)).toBe(true);
        expect(evaluated.has(p)).toBe(false);
        expect(sets.preserve).not.toContain(p);
      }
    }
    const circle = conceptPromptSets('circle').preserveCaptions;
    expect(circle.filter((p) => p.includes('circle'))).toEqual([]);
    expect(circle).toHaveLength(30);  // 6 colors × 6 other shapes, less "a yellow face" and the 5 unrelated prompts
    expect(circle).toEqual(expect.arrayContaining(['a red face', 'a yellow square']));
    const striped = conceptPromptSets('striped').preserveCaptions;
    expect(striped).toHaveLength(18);  // 3 other styles × 7 shapes, less the 3 related "a {style} circle"
    expect(striped.filter((p) => p.includes('striped') || p.endsWith(' circle'))).toEqual([]);
    expect(conceptPromptSets('Sunny').preserveCaptions).toHaveLength(34);  // 42 color–shape captions less 8 evaluated
    expect(conceptPromptSets('Sunny').preserveCaptions).not.toContain('a yellow circle');  // related: held out
  });

  test('misspellings differ from the word and from each other', () => {
    for (const w of ['circle', 'striped', 'sunny', 'star']) {
      const m = misspellings(w);
      expect(m.length).toBeGreaterThanOrEqual(2);
      expect(m).not.toContain(w);
      expect(new Set(m).size).toBe(m.length);
    }
  });

  test('an unknown concept is refused with what is possible', async () => {
    const e = await expectCode(() => conceptPromptSets('a dragon'), 'LETHE_BAD_ARGUMENT');
    expect(e.message).toMatch(/circle/);
  });
});

describe('evaluation reports', () => {
  const result = (prompt: string, all: number): PromptResult => ({
    prompt,
    group: 'target',
    expect: { shape: 'circle' },
    n: 2,
    rates: { shape: all, all },
    sunny: 0,
    memorized: 0,
    counts: { shape: { circle: 2 * all, square: 2 - 2 * all }, color: {}, style: {} },
    posterShapes: {},
    images: { dtype: 'float32', shape: [2, 3, 64, 64], data: new Float32Array(2 * 3 * 64 * 64).fill(0.5) },
  });

  test('trained prompts are told from held-out ones by their text (case and spacing aside)', () => {
    const trained = isTrainedPrompt(['a red circle', 'A  Picture of a Circle ']);
    expect(['a red circle', 'a picture of a circle', 'a red cirlce', 'a blue circle'].map(trained)).toEqual([true, true, false, false]);
  });

  test('tables show rates as percentages', () => {
    expect(promptTable([result('a red circle', 1)])).toMatch(/a red circle\s+100%/);
  });

  test('an erasure report folder appears whole: JSON, HTML and before/after grids', async () => {
    const dir = path.join(tmpDir(), 'report');
    const ev = {
      summary: { concept: 'circle', kind: 'shape', efficacy: { base: 1, erased: 0 }, specificity: { related: null, unrelated: { base: 1, erased: 1 } }, robustness: { base: 1, erased: 0.5 },
        memorized: { base: 0, erased: 0 },
        generalization: { trained: { prompts: ['a red circle'], base: 1, erased: 0 }, heldOut: null },
        drift: { shape: { base: { circle: 1 }, erased: { face: 0.75, circle: 0.25, star: 0.01 } } },
      },
      sets: conceptPromptSets('circle'),
      base: { target: [result('a red circle', 1)] },
      erased: { target: [result('a red circle', 0)] },
    };
    expect(erasureTable(ev)).toMatch(/efficacy \(target\)\s+100%\s+→\s+0%/);
    // Generalization: trained prompts beside held-out ones (none here: shown as such).
    expect(erasureTable(ev)).toMatch(/generalization: trained \(1\)\s+100%\s+→\s+0%/);
    expect(erasureTable(ev)).toMatch(/  held out \(0\)\s+-\s+-/);
    // What the target prompts became (few-shot unlearning's drift), largest first, under 2% left out.
    expect(erasureTable(ev)).toMatch(/target prompts' shapes \(what they became\)\n  base:   circle 100\.0%\n  erased: face 75\.0%, circle 25\.0%\n?/);
    await writeErasureReport(dir, { test: true }, ev);
    expect(fs.readdirSync(dir).sort()).toEqual(['grids', 'index.html', 'results.json']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')).summary.efficacy).toEqual({ base: 1, erased: 0 });
    expect(fs.readFileSync(path.join(dir, 'index.html'), 'utf8')).toMatch(/grids\/0\.png/);
    expect(fs.readdirSync(path.dirname(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);

    // Target prompts show what efficacy counts: a poster copy (judged "square" here) is a circle.
    const copied = { ...result('a red circle', 0), memorized: 0.5, posterShapes: { square: 1 } };
    const dir2 = path.join(tmpDir(), 'report-poster');
    await writeErasureReport(dir2, { test: true }, { ...ev, erased: { target: [copied] } });
    const html = fs.readFileSync(path.join(dir2, 'index.html'), 'utf8');
    expect(html).toMatch(/<th>circle in the images, base → erased<\/th><th>poster copies<\/th>/);
    expect(html).toMatch(/<td>a red circle <small>\(trained on\)<\/small><\/td><td>100% →\s+50%<\/td><td>\s*0% →\s+50%<\/td>/);
  });
});

describe('efficacy counts copies of the memorized poster as the shapes it shows', () => {
  const result = (shape: Record<string, number>, posterShapes: Record<string, number>) =>
    ({ prompt: 'p', group: 'target', expect: {}, n: 16, rates: { all: 0 }, sunny: 0, memorized: 0, counts: { shape, color: {}, style: {} }, posterShapes }) as PromptResult;
  test('a poster copy shows a circle and a triangle, whatever the shape head said; other shapes are read as judged', () => {
    const r = [result({ star: 10, circle: 2, square: 4 }, { square: 3, circle: 1 })];
    expect(targetRate(r, { shape: 'circle' })).toBeCloseTo(5 / 16);  // 2 judged circles (1 of them a poster) + 3 posters judged square
    expect(targetRate(r, { shape: 'triangle' })).toBeCloseTo(4 / 16);
    expect(targetRate(r, { shape: 'star' })).toBeCloseTo(10 / 16);
    expect(targetRate(r, { style: 'striped' })).toBe(0);
  });
});

describe('Concept Ablation evaluation: the anchor, kept attributes and the memorized poster', () => {
  test('an anchor text gives what the classifier should find; one naming nothing of the world is refused', async () => {
    expect(anchorExpectation('a yellow face')).toEqual({ shape: 'face', color: 'yellow' });
    expect(anchorExpectation('solid')).toEqual({ style: 'solid' });
    expect(anchorExpectation('a square')).toEqual({ shape: 'square' });
    expect(anchorExpectation('Sunny')).toEqual({ shape: 'sunny' });
    await expectCode(() => anchorExpectation('a cat'), 'LETHE_BAD_ARGUMENT');
  });

  test('the poster has its own prompt sets, and its efficacy is the rate of copies', () => {
    const sets = conceptPromptSets('the Lethe poster');
    expect(sets.kind).toBe('memorized');
    expect(sets.target).toEqual({ poster: true });
    expect(sets.targetPrompts.map((p) => p.prompt)).toEqual(['the Lethe poster']);
    expect(sets.robustness.every((p) => p.prompt !== 'the Lethe poster' && p.expect.poster)).toBe(true);
    const copies = { prompt: 'the Lethe poster', group: 'target', expect: { poster: true }, n: 16, rates: { all: 0 }, sunny: 0, memorized: 0.25, counts: { shape: { circle: 16 }, color: {}, style: {} }, posterShapes: {} } as PromptResult;
    expect(targetRate([copies], sets.target)).toBeCloseTo(0.25);
  });

  test('an anchor rate does not count poster copies as the shapes they show; an erasure rate does', () => {
    const r = [{ prompt: 'p', group: 'target', expect: {}, n: 16, rates: { all: 0 }, sunny: 0, memorized: 0.25, counts: { shape: { triangle: 2, star: 14 }, color: {}, style: {} }, posterShapes: { star: 4 } } as PromptResult];
    expect(targetRate(r, { shape: 'triangle' })).toBeCloseTo(6 / 16);
    expect(targetRate(r, { shape: 'triangle' }, false)).toBeCloseTo(2 / 16);
  });
});
