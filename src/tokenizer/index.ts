export { CLIPTokenizer } from './clip';
export type { AddedTokenSpec, CLIPTokenizerOptions, DecodeOptions, EncodeOptions, TokenizerEncoding } from './clip';
