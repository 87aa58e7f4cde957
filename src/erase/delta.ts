import { ErrorCodes, LetheError } from '../errors';
import { readSafetensorsHeader } from '../io/safetensors';
import { modelFingerprint } from './fingerprint';

/** The delta file format (DESIGN §6): `new − base` for changed parameters, keyed `<component>.<diffusers key>`. */
export const DELTA_FORMAT = 'lethe-delta';
export const DELTA_FORMAT_VERSION = '1';

export interface DeltaInfo {
  file: string;
  method: string;
  concepts: string[];
  baseFingerprint: string;
  metadata: Record<string, string>;
  tensors: number;
}

export function readDeltaInfo(file: string): DeltaInfo {
  const h = readSafetensorsHeader(file);
  const m = h.metadata;
  if (m.format !== DELTA_FORMAT)
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: not a Lethe delta file (metadata format is ${JSON.stringify(m.format ?? null)}, expected "${DELTA_FORMAT}")`);
  if (m.format_version !== DELTA_FORMAT_VERSION)
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: delta format version ${m.format_version} is not supported (this Lethe reads ${DELTA_FORMAT_VERSION})`);
  let concepts: string[] = [];
  try {
    concepts = JSON.parse(m.concepts ?? '[]');
  } catch {
    throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${file}: metadata 'concepts' is not a JSON list`);
  }
  return { file, method: m.method ?? 'unknown', concepts, baseFingerprint: m.base_fingerprint ?? '', metadata: m, tensors: h.tensors.length };
}

/** Refuses deltas made from another base model: adding them would corrupt the weights silently. */
export async function checkDeltasFor(modelDir: string, files: string[]): Promise<DeltaInfo[]> {
  if (files.length === 0) return [];
  const fp = await modelFingerprint(modelDir);
  return files.map((f) => {
    const info = readDeltaInfo(f);
    if (info.baseFingerprint !== fp)
      throw new LetheError(
        ErrorCodes.BAD_CHECKPOINT,
        `${f}: made from another base model (fingerprint ${info.baseFingerprint.slice(0, 12)}…, this model is ${fp.slice(0, 12)}…); apply it to the model it was erased from`,
      );
    return info;
  });
}
