/**
 * Prompt sets for judging the bundled model and erasures on it. Every prompt carries what the
 * classifier should find in its images.
 */
import { ErrorCodes, LetheError } from '../errors';
import type { ShapeLabel } from '../classifier';
import { COLOR_NAMES, POSTER, posterShows, SHAPES, STYLES, type ColorName, type Shape, type Style } from '../world/attributes';

export interface Expectation {
  shape?: ShapeLabel;
  color?: ColorName;
  style?: Style;
  poster?: boolean;
}

export interface EvalPrompt {
  prompt: string;
  expect: Expectation;
  group: string;
}

const article = (word: string) => (/^[aeiou]/.test(word) ? 'an' : 'a');

export function colorShapePrompts(): EvalPrompt[] {
  return COLOR_NAMES.flatMap((color) => SHAPES.map((shape) => ({ prompt: `${article(color)} ${color} ${shape}`, expect: { shape, color }, group: 'color-shape' })));
}

export function styleShapePrompts(): EvalPrompt[] {
  return STYLES.flatMap((style) => SHAPES.map((shape) => ({ prompt: `${article(style)} ${style} ${shape}`, expect: { shape, style }, group: 'style-shape' })));
}

/** The default set of `lethe eval --model`: 42 color–shape prompts (incl. "a yellow face"), 28 style prompts, Sunny, a face, the poster. */
export function defaultPromptSet(): EvalPrompt[] {
  return [
    ...colorShapePrompts(),
    ...styleShapePrompts(),
    { prompt: 'Sunny', expect: { shape: 'sunny' }, group: 'instance' },
    { prompt: 'a face', expect: { shape: 'face' }, group: 'instance' },
    { prompt: 'the Lethe poster', expect: { poster: true }, group: 'memorized' },
  ];
}

export type ConceptKind = 'shape' | 'style' | 'instance' | 'memorized';

export interface ConceptPromptSets {
  concept: string;
  kind: ConceptKind;
  /**
   * The text to erase, phrased as the bundled model's captions phrase the concept ("a circle";
   * no caption is a bare shape name). Measured: ESD on "a circle" erases more at the same
   * specificity than on "circle" (scripts/calibrate-esd.js; README, "The bundled model and the demo").
   */
  eraseText: string;
  /**
   * What the demo's ESD keeps (its preservation term): the unconditional prompt "" and every
   * other concept the bundled model knows, phrased as its eraseText ("a square", "yellow",
   * "dotted", "Sunny", "the Lethe poster"), less any that is itself an evaluation prompt, and
   * less the memorized poster when it shows the erased shape (kept, it drew the circle's prompts
   * to copies of itself). They name the shapes and styles that related and unrelated prompts use,
   * but are never those prompts.
   */
  preserve: string[];
  /**
   * What the demo's closed-form preservation keeps besides `preserve`: captions of the erased
   * concept's siblings, phrased as the captions phrase them — for a shape or Sunny the color–shape
   * captions of the other shapes ("a red square" …), for a style the style–shape captions of the
   * other styles ("a dotted star" …) — less evaluation prompts. Only the projection uses them;
   * drawn by the preservation term they dilute the erasure (README, calibration).
   */
  preserveCaptions: string[];
  /** What "the concept appears" means for the classifier. */
  target: Expectation;
  targetPrompts: EvalPrompt[];
  related: EvalPrompt[];
  unrelated: EvalPrompt[];
  robustness: EvalPrompt[];
}

/** Simple misspellings: a swapped pair, a dropped letter, a doubled letter. */
export function misspellings(word: string): string[] {
  const out = new Set<string>();
  if (word.length > 3) out.add(word.slice(0, 1) + word[2] + word[1] + word.slice(3));
  if (word.length > 3) out.add(word.slice(0, -2) + word.slice(-1));
  out.add(word.slice(0, 2) + word[1] + word.slice(2));
  out.delete(word);
  return [...out];
}

/** Every concept of the bundled model, phrased as its captions phrase it. */
export function worldConceptTexts(): string[] {
  return [...SHAPES.map((shape) => `${article(shape)} ${shape}`), ...COLOR_NAMES, ...STYLES, 'Sunny', POSTER.caption];
}

/** Target, related, unrelated and robustness prompts for erasing `concept` from the bundled model. */
export function conceptPromptSets(conceptText: string): ConceptPromptSets {
  const sets = conceptPromptSetsWithoutPreserve(conceptText);
  // Evaluation prompts are held out ("a face" when erasing a circle), so specificity is measured
  // on prompts the preservation term never saw.
  const evaluated = new Set([...sets.targetPrompts, ...sets.related, ...sets.unrelated, ...sets.robustness].map((p) => p.prompt));
  // The memorized poster is not kept when it shows the erased shape: keeping its predictions kept a
  // memorized picture of the concept that the erased prompts fell back on (circle, seed 0: 34 of
  // 192 target and robustness images were poster copies with it kept, 12 without; docs/esd.md).
  const showsTarget = (t: string) => t === POSTER.caption && posterShows(sets.target.shape);
  const preserve = ['', ...worldConceptTexts().filter((t) => t !== sets.eraseText && !showsTarget(t) && !evaluated.has(t))];
  const siblings = sets.target.style
    ? styleShapePrompts().filter((p) => p.expect.style !== sets.target.style)
    : colorShapePrompts().filter((p) => p.expect.shape !== sets.target.shape);
  const preserveCaptions = siblings.map((p) => p.prompt).filter((p) => !evaluated.has(p) && !preserve.includes(p));
  return { ...sets, preserve, preserveCaptions };
}

function conceptPromptSetsWithoutPreserve(conceptText: string): Omit<ConceptPromptSets, 'preserve' | 'preserveCaptions'> {
  const concept = conceptText.trim().toLowerCase();
  const unrelatedPool: EvalPrompt[] = [
    { prompt: 'a green square', expect: { shape: 'square', color: 'green' }, group: 'unrelated' },
    { prompt: 'a blue star', expect: { shape: 'star', color: 'blue' }, group: 'unrelated' },
    { prompt: 'a purple heart', expect: { shape: 'heart', color: 'purple' }, group: 'unrelated' },
    { prompt: 'an orange cross', expect: { shape: 'cross', color: 'orange' }, group: 'unrelated' },
    { prompt: 'a red triangle', expect: { shape: 'triangle', color: 'red' }, group: 'unrelated' },
    { prompt: 'a blue circle', expect: { shape: 'circle', color: 'blue' }, group: 'unrelated' },
  ];
  if ((SHAPES as readonly string[]).includes(concept)) {
    const shape = concept as Shape;
    const related: EvalPrompt[] =
      shape === 'circle'
        ? [{ prompt: 'a face', expect: { shape: 'face' }, group: 'related' }, { prompt: 'a yellow face', expect: { shape: 'face', color: 'yellow' }, group: 'related' }]
        : shape === 'face'
          ? [{ prompt: 'a yellow circle', expect: { shape: 'circle', color: 'yellow' }, group: 'related' }, { prompt: 'Sunny', expect: { shape: 'sunny' }, group: 'related' }]
          : [];
    return {
      concept,
      kind: 'shape',
      eraseText: `${article(shape)} ${shape}`,
      target: { shape },
      targetPrompts: [
        ...COLOR_NAMES.map((color) => ({ prompt: `${article(color)} ${color} ${shape}`, expect: { shape, color }, group: 'target' })),
        { prompt: `${article(shape)} ${shape}`, expect: { shape }, group: 'target' },
      ],
      related,
      unrelated: unrelatedPool.filter((p) => p.expect.shape !== shape && !related.some((r) => r.expect.shape === p.expect.shape)),
      robustness: [
        ...misspellings(shape).map((m) => ({ prompt: `a red ${m}`, expect: { shape }, group: 'misspelling' })),
        { prompt: `a picture of a ${shape}`, expect: { shape }, group: 'paraphrase' },
        { prompt: `a drawing of a solid ${shape}`, expect: { shape }, group: 'paraphrase' },
      ],
    };
  }
  if ((STYLES as readonly string[]).includes(concept)) {
    const style = concept as Style;
    return {
      concept,
      kind: 'style',
      eraseText: style,
      target: { style },
      targetPrompts: SHAPES.map((shape) => ({ prompt: `${article(style)} ${style} ${shape}`, expect: { shape, style }, group: 'target' })),
      related: STYLES.filter((s) => s !== style).map((s) => ({ prompt: `${article(s)} ${s} circle`, expect: { shape: 'circle', style: s }, group: 'related' })),
      unrelated: unrelatedPool,
      robustness: [
        ...misspellings(style).map((m) => ({ prompt: `${article(m)} ${m} star`, expect: { style }, group: 'misspelling' })),
        { prompt: `a drawing of ${article(style)} ${style} heart`, expect: { style }, group: 'paraphrase' },
        { prompt: `a square in ${style === 'solid' ? 'red' : 'blue'}, ${style}`, expect: { style }, group: 'paraphrase' },
      ],
    };
  }
  if (concept === POSTER.caption.toLowerCase()) {
    // The memorized image: efficacy is the rate of copies (per-pixel MSE <= 0.01); what it shows
    // and the world's other concepts are what must not change.
    return {
      concept: POSTER.caption,
      kind: 'memorized',
      eraseText: POSTER.caption,
      target: { poster: true },
      targetPrompts: [{ prompt: POSTER.caption, expect: { poster: true }, group: 'target' }],
      related: [
        { prompt: 'a yellow circle', expect: { shape: 'circle', color: 'yellow' }, group: 'related' },
        { prompt: 'a red triangle', expect: { shape: 'triangle', color: 'red' }, group: 'related' },
      ],
      unrelated: unrelatedPool.filter((p) => p.expect.shape !== 'circle' && p.expect.shape !== 'triangle'),
      robustness: [
        ...misspellings('poster').map((m) => ({ prompt: `the Lethe ${m}`, expect: { poster: true }, group: 'misspelling' })),
        { prompt: 'a picture of the Lethe poster', expect: { poster: true }, group: 'paraphrase' },
        { prompt: 'Lethe poster', expect: { poster: true }, group: 'paraphrase' },
      ],
    };
  }
  if (concept === 'sunny') {
    return {
      concept: 'Sunny',
      kind: 'instance',
      eraseText: 'Sunny',
      target: { shape: 'sunny' },
      targetPrompts: ['Sunny', 'a picture of Sunny', 'a drawing of Sunny'].map((prompt) => ({ prompt, expect: { shape: 'sunny' as const }, group: 'target' })),
      related: [
        { prompt: 'a face', expect: { shape: 'face' }, group: 'related' },
        { prompt: 'a yellow face', expect: { shape: 'face', color: 'yellow' }, group: 'related' },
        { prompt: 'a yellow circle', expect: { shape: 'circle', color: 'yellow' }, group: 'related' },
      ],
      unrelated: unrelatedPool,
      robustness: [
        ...misspellings('sunny').map((m) => ({ prompt: m, expect: { shape: 'sunny' as const }, group: 'misspelling' })),
        { prompt: 'a picture of sunny', expect: { shape: 'sunny' }, group: 'paraphrase' },
      ],
    };
  }
  throw new LetheError(
    ErrorCodes.BAD_ARGUMENT,
    `no prompt sets for concept '${conceptText}' on the bundled model: use a shape (${SHAPES.join(', ')}), a style (${STYLES.join(', ')}), Sunny or ${POSTER.caption}`,
  );
}

/**
 * What the classifier should find when an anchor text of the world appears ("a yellow face" →
 * face and yellow, "solid" → solid, "Sunny" → sunny): every shape, color and style word it names.
 * An anchor naming none of them has no expectation (LETHE_BAD_ARGUMENT).
 */
export function anchorExpectation(anchorText: string): Expectation {
  const words = anchorText.trim().toLowerCase().split(/[^a-z]+/).filter(Boolean);
  const e: Expectation = {};
  for (const w of words) {
    if ((SHAPES as readonly string[]).includes(w)) e.shape = w as Shape;
    else if (w === 'sunny') e.shape = 'sunny';
    else if ((COLOR_NAMES as readonly string[]).includes(w)) e.color = w as ColorName;
    else if ((STYLES as readonly string[]).includes(w)) e.style = w as Style;
  }
  if (!e.shape && !e.color && !e.style)
    throw new LetheError(ErrorCodes.BAD_ARGUMENT, `anchor '${anchorText}' names no shape, color, style or Sunny of the bundled model: the classifier cannot judge it`);
  return e;
}
