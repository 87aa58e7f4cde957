/**
 * Delta files (docs/architecture.md, "Delta files"): safetensors holding `new − base` for the
 * changed parameters, keyed `unet.<diffusers key>` and `text_encoder.<transformers key>`, and new
 * tensors under `extra.<name>` (prompt memory). Version 2 records one base fingerprint per
 * component the delta touches, so a text-encoder delta applies to any model with that text
 * encoder; version 1 (one whole-model fingerprint, UNet keys only) is still read.
 */
import { ErrorCodes, LetheError } from '../errors';
import { readSafetensorsHeader } from '../io/safetensors';
import { componentFingerprint, modelFingerprint } from './fingerprint';

export const DELTA_FORMAT = 'lethe-delta';
export const DELTA_FORMAT_VERSION = '2';
const READABLE_VERSIONS = ['1', '2'];

/** The components a delta's weight keys may name; `extra.` tensors attach to the UNet. */
export const DELTA_COMPONENTS = ['unet', 'text_encoder'] as const;

export interface DeltaInfo {
  file: string;
  formatVersion: string;
  method: string;
  concepts: string[];
  /** Per component the delta touches: the fingerprint of the base component it was made from. */
  baseFingerprints: Record<string, string>;
  /** Version 1 only: the whole base model's fingerprint. */
  baseFingerprint: string;
  /** The components its keys touch (`extra.` counts as unet). */
  components: string[];
  /** Its `extra.` tensor names (as applied: none when its prompt memory was dropped). */
  extras: string[];
  /** The `extra.` tensors a pipeline left out (Pipeline.load's dropPromptMemory). */
  droppedExtras?: string[];
  metadata: Record<string, string>;
  tensors: number;
  /** The prompts naming the concept that training saw (metadata `trained_prompts`; older deltas: the concepts). */
  trainedPrompts: string[];
}

function bad(file: string, reason: string): never {
  throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: ${reason}`);
}

function parseJson<T>(file: string, key: string, text: string | undefined, fallback: T): T {
  if (text === undefined) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    bad(file, `metadata '${key}' is not valid JSON`);
  }
}

export function readDeltaInfo(file: string): DeltaInfo {
  const h = readSafetensorsHeader(file);
  const m = h.metadata;
  if (m.format !== DELTA_FORMAT) bad(file, `not a Lethe delta file (metadata format is ${JSON.stringify(m.format ?? null)}, expected "${DELTA_FORMAT}")`);
  if (!READABLE_VERSIONS.includes(m.format_version))
    bad(file, `delta format version ${m.format_version} is not supported (this Lethe reads ${READABLE_VERSIONS.join(' and ')})`);
  const concepts = parseJson<unknown>(file, 'concepts', m.concepts ?? '[]', []);
  if (!Array.isArray(concepts) || !concepts.every((c) => typeof c === 'string')) bad(file, "metadata 'concepts' is not a JSON list of strings");
  const trainedPrompts = parseJson<unknown>(file, 'trained_prompts', m.trained_prompts, concepts);
  if (!Array.isArray(trainedPrompts) || !trainedPrompts.every((c) => typeof c === 'string')) bad(file, "metadata 'trained_prompts' is not a JSON list of strings");
  const components = new Set<string>();
  const extras: string[] = [];
  for (const t of h.tensors) {
    const component = t.name.slice(0, t.name.indexOf('.'));
    if (component === 'extra') {
      extras.push(t.name);
      components.add('unet');
    } else if ((DELTA_COMPONENTS as readonly string[]).includes(component)) {
      components.add(component);
    } else {
      bad(file, `tensor '${t.name}' is not unet.<key>, text_encoder.<key> or extra.<name>`);
    }
  }
  const baseFingerprints = parseJson<Record<string, string>>(file, 'base_fingerprints', m.base_fingerprints, {});
  if (typeof baseFingerprints !== 'object' || baseFingerprints === null || Array.isArray(baseFingerprints)) bad(file, "metadata 'base_fingerprints' is not a JSON object");
  if (m.format_version !== '1')
    for (const c of components) if (typeof baseFingerprints[c] !== 'string') bad(file, `records no base fingerprint for its ${c} tensors`);
  return {
    file,
    formatVersion: m.format_version,
    method: m.method ?? 'unknown',
    concepts: concepts as string[],
    baseFingerprints,
    baseFingerprint: m.base_fingerprint ?? '',
    components: [...components],
    extras,
    metadata: m,
    tensors: h.tensors.length,
    trainedPrompts: trainedPrompts as string[],
  };
}

/**
 * Refuses deltas made from other base components (adding them would corrupt the weights
 * silently), and two deltas that both set the same `extra.` tensor (their memories cannot both
 * hold). `applied` are the deltas the model already carries.
 */
export async function checkDeltasFor(modelDir: string, files: string[], applied: DeltaInfo[] = []): Promise<DeltaInfo[]> {
  if (files.length === 0) return [];
  const fps = new Map<string, string>();
  const fingerprintOf = async (component: string) => {
    if (!fps.has(component)) fps.set(component, component === '*' ? await modelFingerprint(modelDir) : await componentFingerprint(modelDir, component));
    return fps.get(component)!;
  };
  const setBy = new Map<string, string>();
  for (const d of applied) for (const e of d.extras) setBy.set(e, d.file);
  const out: DeltaInfo[] = [];
  for (const f of files) {
    const info = readDeltaInfo(f);
    if (info.formatVersion === '1') {
      const fp = await fingerprintOf('*');
      if (info.baseFingerprint !== fp)
        bad(f, `made from another base model (fingerprint ${info.baseFingerprint.slice(0, 12)}…, this model is ${fp.slice(0, 12)}…); apply it to the model it was erased from`);
    }
    for (const [component, want] of Object.entries(info.baseFingerprints)) {
      const have = await fingerprintOf(component);
      if (want !== have)
        bad(
          f,
          `made from another base model: its ${component} fingerprint is ${want.slice(0, 12)}…, this model's ${component} is ${have.slice(0, 12)}…; ` +
            `apply it to a model with the ${component} it was erased from`,
        );
    }
    for (const e of info.extras) {
      const other = setBy.get(e);
      if (other) bad(f, `sets ${e}, which ${other} already sets; two deltas cannot both set the same extra tensor`);
      setBy.set(e, f);
    }
    out.push(info);
  }
  return out;
}

/** The base fingerprints a new delta records for the components it may touch. */
export async function baseFingerprints(modelDir: string, components: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const c of [...new Set(components)].sort()) out[c] = await componentFingerprint(modelDir, c);
  return out;
}
