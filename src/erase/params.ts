/**
 * Which tensors an erasure trains (docs/architecture.md, "Parameter selection"): named presets,
 * each a list of patterns on component-qualified checkpoint keys, or the patterns themselves.
 * A pattern is `component:glob` (`unet:*.attn2.to_k.*`, `text_encoder:*.mlp.*`); `*` matches any
 * run of characters, dots included; a leading `!` excludes. The native job matches them against
 * the model's own parameter names and refuses a selection that matches nothing, listing what the
 * model has. `{last}` in a pattern stands for the text encoder's last layer index (few-shot
 * unlearning's `mlp-final-attn` names the last layer's self-attention on any depth of encoder).
 */
import { ErrorCodes, LetheError } from '../errors';

export interface ParameterPreset {
  patterns: string[];
  describe: string;
}

/** The one list of presets. Methods name one as their default; users may name any. */
export const PARAMETER_PRESETS: Record<string, ParameterPreset> = {
  'esd-x': { patterns: ['unet:*.attn2.*'], describe: 'every cross-attention parameter: unet *.attn2.*' },
  'esd-x-strict': { patterns: ['unet:*.attn2.to_k.*', 'unet:*.attn2.to_v.*'], describe: 'cross-attention keys and values only: unet *.attn2.to_k.*, *.attn2.to_v.*' },
  'esd-u': {
    patterns: ['unet:*', '!unet:*.attn2.*', '!unet:time_embedding.*', '!unet:conv_norm_out.*', '!unet:conv_out.*'],
    describe: 'every UNet parameter except *.attn2.*, time_embedding.*, conv_norm_out.*, conv_out.*',
  },
  'esd-self': { patterns: ['unet:*.attn1.*'], describe: 'self-attention: unet *.attn1.*' },
  'esd-all': { patterns: ['unet:*'], describe: 'every UNet parameter' },
  // Concept Ablation's sets (its reference's crossattn_kv, crossattn, full, embedding).
  xattn: { patterns: ['unet:*.attn2.to_k.*', 'unet:*.attn2.to_v.*'], describe: 'cross-attention keys and values: unet *.attn2.to_k.*, *.attn2.to_v.*' },
  attn: { patterns: ['unet:*.attn1.*', 'unet:*.attn2.*'], describe: 'every attention projection: unet *.attn1.*, *.attn2.*' },
  full: { patterns: ['unet:*'], describe: 'every UNet parameter' },
  embedding: { patterns: ['text_encoder:*.token_embedding.weight'], describe: "the text encoder's token embedding: text_encoder *.token_embedding.weight" },
  // Few-shot text-encoder unlearning's sets (its reference's freeze_and_unfreeze_text_encoder),
  // by transformers names; `--te-params mlp-final-attn` is te-mlp-final-attn.
  'te-mlp-final-attn': {
    patterns: ['text_encoder:*.layers.*.mlp.fc1.*', 'text_encoder:*.layers.*.mlp.fc2.*', 'text_encoder:*.layers.{last}.self_attn.*'],
    describe: "every text-encoder layer's mlp.fc1 / fc2 and the last layer's self_attn",
  },
  'te-mlp': { patterns: ['text_encoder:*.layers.*.mlp.fc1.*', 'text_encoder:*.layers.*.mlp.fc2.*'], describe: "every text-encoder layer's mlp.fc1 / fc2" },
  'te-attn': { patterns: ['text_encoder:*.layers.*.self_attn.*'], describe: "every text-encoder layer's self_attn" },
  'te-all': { patterns: ['text_encoder:*'], describe: 'every text-encoder parameter' },
};

/** What a model adds to a selection's meaning: the text encoder's depth, for `{last}`. */
export interface SelectionModel {
  textEncoderLayers?: number;
}

export interface ParameterSelection {
  /** As given: preset names and patterns, comma-separated. */
  spec: string;
  patterns: string[];
  /** The components the selection can touch (from its plain patterns). */
  components: string[];
}

/** `esd-x-strict`, `unet:*.attn2.to_k.*,text_encoder:*.mlp.*`, or a mix, as a string or a list. */
export function resolveParams(spec: string | string[], model: SelectionModel = {}): ParameterSelection {
  const items = (Array.isArray(spec) ? spec : [spec])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new LetheError(ErrorCodes.BAD_ARGUMENT, 'params: give a preset or patterns (e.g. esd-x-strict, unet:*.attn2.to_k.*)');
  const patterns: string[] = [];
  for (const item of items) {
    if (item.includes(':')) {
      patterns.push(item);
      continue;
    }
    const preset = PARAMETER_PRESETS[item];
    if (!preset)
      throw new LetheError(
        ErrorCodes.BAD_ARGUMENT,
        `params: '${item}' is neither a preset (${Object.keys(PARAMETER_PRESETS).join(', ')}) nor a pattern component:glob (unet:…, text_encoder:…)`,
      );
    patterns.push(...preset.patterns);
  }
  for (let i = 0; i < patterns.length; i++) {
    if (!patterns[i].includes('{last}')) continue;
    if (!model.textEncoderLayers) throw new LetheError(ErrorCodes.BAD_ARGUMENT, `params: '${patterns[i]}' names the text encoder's last layer, and this model's depth is not known`);
    patterns[i] = patterns[i].split('{last}').join(String(model.textEncoderLayers - 1));
  }
  const components = [...new Set(patterns.filter((p) => !p.startsWith('!')).map((p) => p.slice(0, p.indexOf(':'))))];
  return { spec: items.join(','), patterns, components };
}
