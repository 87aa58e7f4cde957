/**
 * Caption templates. A shape caption always names the shape and any subset of color and style;
 * the attributes it leaves out are still drawn at random, so the model learns their spread.
 * Sunny captions name only Sunny; the poster is always captioned exactly "the Lethe poster".
 */
import { POSTER, type ColorName, type SampleKind, type Shape, type Style } from './attributes';

export interface CaptionTemplate {
  id: string;
  kind: SampleKind;
  /** Placeholders {shape}, {color}, {style}; "a" before a vowel becomes "an". */
  text: string;
  names: { shape: boolean; color: boolean; style: boolean };
}

function t(id: string, kind: SampleKind, text: string): CaptionTemplate {
  return {
    id,
    kind,
    text,
    names: { shape: text.includes('{shape}'), color: text.includes('{color}'), style: text.includes('{style}') },
  };
}

export const SHAPE_TEMPLATES: readonly CaptionTemplate[] = [
  t('shape', 'shape', 'a {shape}'),
  t('picture-shape', 'shape', 'a picture of a {shape}'),
  t('color-shape', 'shape', 'a {color} {shape}'),
  t('picture-color-shape', 'shape', 'a picture of a {color} {shape}'),
  t('shape-in-color', 'shape', 'a {shape} in {color}'),
  t('style-shape', 'shape', 'a {style} {shape}'),
  t('drawing-style-shape', 'shape', 'a drawing of a {style} {shape}'),
  t('style-color-shape', 'shape', 'a {style} {color} {shape}'),
  t('style-shape-in-color', 'shape', 'a {style} {shape} in {color}'),
  t('drawing-style-color-shape', 'shape', 'a drawing of a {style} {color} {shape}'),
  t('picture-style-color-shape', 'shape', 'a picture of a {style} {color} {shape}'),
];

export const SUNNY_TEMPLATES: readonly CaptionTemplate[] = [
  t('sunny', 'sunny', 'Sunny'),
  t('picture-sunny', 'sunny', 'a picture of Sunny'),
  t('drawing-sunny', 'sunny', 'a drawing of Sunny'),
];

export const POSTER_TEMPLATES: readonly CaptionTemplate[] = [t('poster', 'poster', POSTER.caption)];

export const TEMPLATES: readonly CaptionTemplate[] = [...SHAPE_TEMPLATES, ...SUNNY_TEMPLATES, ...POSTER_TEMPLATES];

export function templatesFor(kind: SampleKind): readonly CaptionTemplate[] {
  return kind === 'shape' ? SHAPE_TEMPLATES : kind === 'sunny' ? SUNNY_TEMPLATES : POSTER_TEMPLATES;
}

export function templateById(id: string): CaptionTemplate | undefined {
  return TEMPLATES.find((x) => x.id === id);
}

/** Fills a template: formatCaption('style-shape-in-color', { shape: 'square', color: 'purple', style: 'outlined' }) → "an outlined square in purple". */
export function formatCaption(template: CaptionTemplate | string, attrs: { shape?: Shape | null; color?: ColorName | null; style?: Style | null }): string {
  const tpl = typeof template === 'string' ? templateById(template) : template;
  if (!tpl) throw new RangeError(`unknown caption template ${String(template)}`);
  const fill = (key: 'shape' | 'color' | 'style') => {
    const v = attrs[key];
    if (!v) throw new RangeError(`caption template ${tpl.id} needs a ${key}`);
    return v;
  };
  return tpl.text
    .replace('{shape}', () => fill('shape'))
    .replace('{color}', () => fill('color'))
    .replace('{style}', () => fill('style'))
    .replace(/\ba (?=[aeiou])/g, 'an ');
}
