/**
 * What a concept is on the shapes world, and the world's captions that name it: shared by the
 * methods that build their training prompts from the world's caption templates (Concept
 * Ablation's prompt pairs, few-shot unlearning's templates).
 */
import { COLOR_NAMES, POSTER, SHAPE_TEMPLATES, SHAPES, STYLES, SUNNY, SUNNY_TEMPLATES, formatCaption, isShape, isStyle, type Shape, type Style } from '../world';

/** How a concept is erased: an object, an instance (Sunny), a style, a memorized image. */
export type ConceptKind = 'object' | 'instance' | 'style' | 'memorized';

const strip = (t: string) => t.trim().toLowerCase().replace(/^(a|an|the)\s+/, '');

/** What a world text names: a shape (or Sunny), a style, the poster. */
export function worldTerm(text: string): { shape?: Shape; style?: Style; sunny?: boolean; poster?: boolean } {
  const t = strip(text);
  if (text.trim().toLowerCase() === POSTER.caption.toLowerCase()) return { poster: true };
  if (t === SUNNY.name.toLowerCase()) return { sunny: true };
  if (isShape(t)) return { shape: t };
  if (isStyle(t)) return { style: t };
  return {};
}

/** The kind of a concept: from what it names on the world; on another model, an object. */
export function detectKind(concept: string, world: boolean): ConceptKind {
  if (!world) return 'object';
  const w = worldTerm(concept);
  return w.poster ? 'memorized' : w.sunny ? 'instance' : w.style ? 'style' : 'object';
}

/**
 * Every world caption naming the concept, in template order: a shape with every color and style
 * its templates can name; a style on every shape and color; Sunny's captions; the poster's.
 * Undefined when the concept is none of these, or not of `kind`.
 */
export function worldCaptions(concept: string, kind: ConceptKind): string[] | undefined {
  const c = worldTerm(concept);
  if (kind === 'object' && c.shape) {
    const out: string[] = [];
    for (const t of SHAPE_TEMPLATES)
      for (const color of t.names.color ? COLOR_NAMES : [null]) for (const style of t.names.style ? STYLES : [null]) out.push(formatCaption(t, { shape: c.shape, color, style }));
    return out;
  }
  if (kind === 'style' && c.style) {
    const out: string[] = [];
    for (const t of SHAPE_TEMPLATES.filter((x) => x.names.style))
      for (const shape of SHAPES) for (const color of t.names.color ? COLOR_NAMES : [null]) out.push(formatCaption(t, { shape, color, style: c.style }));
    return out;
  }
  if (kind === 'instance' && c.sunny) return SUNNY_TEMPLATES.map((t) => t.text);
  if (kind === 'memorized' && c.poster) return [POSTER.caption];
  return undefined;
}
