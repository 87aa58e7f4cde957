/**
 * CLIP byte-level BPE tokenizer, a port of `transformers.CLIPTokenizer` (the slow, Python one) as of
 * transformers 4.57.1.
 *
 * It reproduces that class as it runs WITHOUT `ftfy` installed, which is transformers' default (ftfy
 * is not one of its dependencies). In that mode the text goes through
 * `BasicTokenizer(strip_accents=False, do_split_on_punc=False)` and not through
 * `whitespace_clean(ftfy.fix_text(text)).lower()`:
 *
 *   1. added/special tokens written literally (`<|startoftext|>`, `<|endoftext|>`, and for SD 2 the pad
 *      token `!`) are cut out first, case-sensitively, by transformers' `Trie.split`;
 *   2. each remaining piece: drop NUL, U+FFFD and control characters (Unicode category C*, except
 *      \t \n \r), turn whitespace (\t \n \r, Zs) into spaces, put spaces around CJK ideographs, NFC,
 *      split on whitespace, lowercase each word (Python `str.lower`), no accent stripping, no
 *      punctuation splitting, join with single spaces;
 *   3. CLIP's pre-tokenizer regex (case-insensitive) over that text, characters that no alternative
 *      matches being skipped;
 *   4. each match → UTF-8 bytes → `bytes_to_unicode` characters → BPE by merge rank, the last symbol
 *      carrying `</w>`; a token missing from the vocabulary becomes the unknown token.
 *
 * Unicode tables come from the JavaScript engine (V8/ICU), Python's from its own Unicode database, so
 * results can differ only where the two Unicode versions do: characters assigned after the Python's
 * version (e.g. emoji newer than Unicode 14 for Python 3.11) are deleted by Python as "unassigned"
 * (category Cn) and kept here (see `removeChar`), and the odd character whose properties changed
 * (Node 20 / Unicode 17 against Python 3.11 / Unicode 14: U+0295 and U+1171E, which decide whether a
 * following capital sigma lowercases to final ς). Every other code point was checked one by one.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes, LetheError } from '../errors';

export interface TokenizerEncoding {
  ids: number[];
  /** text that was cut by truncation at maxLength, or null */
  truncated: string | null;
}

export interface EncodeOptions {
  /** total length including BOS and EOS; default `modelMaxLength` (77) */
  maxLength?: number;
  /** pad with `padTokenId` up to `maxLength`; default true */
  padding?: boolean;
  /** cut to `maxLength` keeping EOS last; default true */
  truncation?: boolean;
}

export interface DecodeOptions {
  /** drop special tokens (bos/eos/unk/pad; for SD 2 that includes every `!`) as transformers does; default false */
  skipSpecialTokens?: boolean;
  /** transformers' `clean_up_tokenization` (" ." → "." ...); default from tokenizer_config.json, else false */
  cleanUpTokenizationSpaces?: boolean;
}

/** An added token as transformers' `AddedToken` (`normalized` plays no part for CLIP: it has no do_lower_case attribute). */
export interface AddedTokenSpec {
  content: string;
  lstrip?: boolean;
  rstrip?: boolean;
  singleWord?: boolean;
  special?: boolean;
}

export interface CLIPTokenizerOptions {
  vocab: Record<string, number>;
  /** merge lines without the `#version` header */
  merges: string[];
  bosToken?: string | AddedTokenSpec;
  eosToken?: string | AddedTokenSpec;
  padToken?: string | AddedTokenSpec;
  unkToken?: string | AddedTokenSpec;
  additionalSpecialTokens?: Array<string | AddedTokenSpec>;
  /** tokens with fixed ids (tokenizer_config.json `added_tokens_decoder`, added_tokens.json) */
  addedTokens?: Array<AddedTokenSpec & { id: number }>;
  modelMaxLength?: number;
  cleanUpTokenizationSpaces?: boolean;
}

interface AddedToken {
  content: string;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
  special: boolean;
}

const DEFAULT_MAX_LENGTH = 77;
/** transformers reads at most this many merge lines (`[1 : 49152 - 256 - 2 + 1]` after the header). */
const MAX_MERGES = 49152 - 256 - 2;
const BPE_CACHE_LIMIT = 50000;

const PATTERN =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

// ---------------------------------------------------------------------------------------------
// Python string helpers
// ---------------------------------------------------------------------------------------------

/** Python's `str.isspace` set (bidi class WS/B/S or category Zs). */
const PY_SPACE_CHARS = '\t\n\u000b\u000c\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE_CHARS}]+`, 'u');
const PY_LSTRIP = new RegExp(`^[${PY_SPACE_CHARS}]+`, 'u');
const PY_RSTRIP = new RegExp(`[${PY_SPACE_CHARS}]+$`, 'u');

function pyLstrip(s: string): string {
  return s.replace(PY_LSTRIP, '');
}
function pyRstrip(s: string): string {
  return s.replace(PY_RSTRIP, '');
}
function pyStrip(s: string): string {
  return pyRstrip(pyLstrip(s));
}
/** Python's `str.split()` with no argument. */
function pySplit(s: string): string[] {
  const t = pyStrip(s);
  return t ? t.split(PY_SPACE_RUN) : [];
}

// ---------------------------------------------------------------------------------------------
// BasicTokenizer(strip_accents=False, do_split_on_punc=False) as CLIPTokenizer uses it
// ---------------------------------------------------------------------------------------------

const CONTROL = /^\p{C}$/u;
const SPACE_SEPARATOR = /^\p{Zs}$/u;

/**
 * `_clean_text`: drops NUL, U+FFFD and `_is_control` characters (category C*: Cc, Cf, Cs, Co, Cn, but
 * not \t \n \r). Note Cn: Python deletes code points its `unicodedata` does not know, so a character
 * newer than the Python's Unicode version is deleted there and kept here (where the engine knows it).
 */
function removeChar(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return ch === '\u0000' || ch === '\ufffd' || CONTROL.test(ch);
}

function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || SPACE_SEPARATOR.test(ch);
}

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** `" ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text))`. */
function basicClean(text: string): string {
  let out = '';
  for (const ch of text) {
    if (removeChar(ch)) continue;
    if (isWhitespace(ch)) {
      out += ' ';
      continue;
    }
    const cp = ch.codePointAt(0)!;
    out += isChineseChar(cp) ? ` ${ch} ` : ch;
  }
  // "prevents treating the same character with different unicode codepoints as different characters"
  const words = pySplit(out.normalize('NFC'));
  // strip_accents=False: lowercase only; do_split_on_punc=False: each word stays whole.
  return pySplit(words.map((w) => w.toLowerCase()).join(' ')).join(' ');
}

// ---------------------------------------------------------------------------------------------
// bytes_to_unicode
// ---------------------------------------------------------------------------------------------

function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table: string[] = new Array(256);
  for (const b of bs) table[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCharCode(256 + n++);
  }
  return table;
}

const BYTE_ENCODER = bytesToUnicode();
const BYTE_DECODER = new Map<string, number>(BYTE_ENCODER.map((c, b) => [c, b]));

// ---------------------------------------------------------------------------------------------
// transformers' Trie.split (added tokens are cut out of the raw text before anything else)
// ---------------------------------------------------------------------------------------------

type TrieNode = Map<string, TrieNode> & { end?: boolean };

class Trie {
  private readonly root: TrieNode = new Map();

  add(word: string): void {
    if (!word) return;
    let node = this.root;
    for (const ch of word) {
      let next = node.get(ch);
      if (!next) {
        next = new Map();
        node.set(ch, next);
      }
      node = next;
    }
    node.end = true;
  }

  get empty(): boolean {
    return this.root.size === 0;
  }

  /** A line-by-line port of `Trie.split` (leftmost match, longest among overlapping ones); indices are code points. */
  split(input: string): string[] {
    if (this.empty) return input ? [input] : [];
    const text = Array.from(input);
    let states = new Map<number, TrieNode>(); // insertion-ordered like Python's OrderedDict
    const offsets = [0];
    let skip = 0;
    for (let current = 0; current < text.length; current++) {
      const currentChar = text[current];
      if (skip && current < skip) continue;
      const toRemove = new Set<number>();
      let reset = false;
      for (const [stateStart, pointer] of states) {
        let start = stateStart;
        if (pointer.end) {
          let end = 0;
          for (const [lookstart, lookPointer0] of states) {
            let lookPointer = lookPointer0;
            let lookaheadIndex: number;
            if (lookstart > start) break;
            else if (lookstart < start) {
              lookaheadIndex = current + 1;
              end = current + 1;
            } else {
              lookaheadIndex = current;
              end = current;
            }
            let nextChar: string | undefined = lookaheadIndex < text.length ? text[lookaheadIndex] : undefined;
            if (lookPointer.end) {
              start = lookstart;
              end = lookaheadIndex;
              skip = lookaheadIndex;
            }
            while (nextChar !== undefined && lookPointer.has(nextChar)) {
              lookPointer = lookPointer.get(nextChar)!;
              lookaheadIndex += 1;
              if (lookPointer.end) {
                start = lookstart;
                end = lookaheadIndex;
                skip = lookaheadIndex;
              }
              if (lookaheadIndex === text.length) break;
              nextChar = text[lookaheadIndex];
            }
          }
          offsets.push(start, end);
          reset = true;
          break;
        } else if (pointer.has(currentChar)) {
          states.set(stateStart, pointer.get(currentChar)!);
        } else {
          toRemove.add(stateStart);
        }
      }
      if (reset) states = new Map();
      else for (const s of toRemove) states.delete(s);
      if (current >= skip && this.root.has(currentChar)) states.set(current, this.root.get(currentChar)!);
    }
    for (const [start, pointer] of states) {
      if (pointer.end) {
        offsets.push(start, text.length);
        break;
      }
    }
    // cut_text
    offsets.push(text.length);
    const pieces: string[] = [];
    let start = 0;
    for (const end of offsets) {
      if (start >= end) continue;
      pieces.push(text.slice(start, end).join(''));
      start = end;
    }
    return pieces;
  }
}

// ---------------------------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------------------------

function toAdded(t: string | AddedTokenSpec, special: boolean): AddedToken {
  if (typeof t === 'string') return { content: t, lstrip: false, rstrip: false, singleWord: false, special };
  return {
    content: t.content,
    lstrip: !!t.lstrip,
    rstrip: !!t.rstrip,
    singleWord: !!t.singleWord,
    special: special || !!t.special,
  };
}

function contentOf(t: string | AddedTokenSpec): string {
  return typeof t === 'string' ? t : t.content;
}

function badArg(reason: string): LetheError {
  return new LetheError(ErrorCodes.BAD_ARGUMENT, reason);
}

export class CLIPTokenizer {
  readonly bosToken: string;
  readonly eosToken: string;
  readonly padToken: string;
  readonly unkToken: string;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  readonly modelMaxLength: number;
  /** Size of vocab.json (transformers' `vocab_size`, without added tokens). */
  readonly vocabSize: number;

  private readonly encoder: Map<string, number>;
  private readonly decoder: Map<number, string>;
  private readonly ranks: Map<string, number>;
  private readonly addedDecoder = new Map<number, AddedToken>();
  private readonly addedEncoder = new Map<string, number>();
  private readonly specialTokens: string[];
  private readonly specialSet: Set<string>;
  private readonly specialIds: Set<number>;
  private readonly legacyAdded: Set<string>;
  private readonly trie = new Trie();
  private readonly cache = new Map<string, string[]>();
  private readonly cleanUpSpaces: boolean;

  /** Reads a tokenizer folder as `CLIPTokenizer.from_pretrained` does (vocab.json, merges.txt, and optionally tokenizer_config.json, special_tokens_map.json, added_tokens.json). */
  static fromDir(dir: string): CLIPTokenizer {
    const where = (f: string) => path.join(dir, f);
    const readText = (f: string, required: boolean): string | null => {
      const p = where(f);
      if (!fs.existsSync(p)) {
        if (!required) return null;
        throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `tokenizer folder ${dir} has no ${f}`);
      }
      try {
        return fs.readFileSync(p, 'utf8');
      } catch (e) {
        throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `cannot read ${p}: ${(e as Error).message}`);
      }
    };
    const readJson = (f: string, required: boolean): Record<string, unknown> | null => {
      const text = readText(f, required);
      if (text === null) return null;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (e) {
        throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${where(f)} is not valid JSON: ${(e as Error).message}`);
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${where(f)} must hold a JSON object`);
      }
      return value as Record<string, unknown>;
    };

    const vocab = readJson('vocab.json', true)!;
    for (const [k, v] of Object.entries(vocab)) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
        throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${where('vocab.json')}: id of ${JSON.stringify(k)} is not a non-negative integer`);
      }
    }
    const mergesText = readText('merges.txt', true)!;
    // Python: open() in text mode (universal newlines), .read().strip().split("\n")[1:], the first line
    // being the "#version" header.
    const merges = pyStrip(mergesText.replace(/\r\n?/g, '\n')).split('\n').slice(1);

    const config = readJson('tokenizer_config.json', false) ?? {};
    const map = readJson('special_tokens_map.json', false) ?? {};
    const addedJson = readJson('added_tokens.json', false);

    const asSpec = (v: unknown, key: string): string | AddedTokenSpec | undefined => {
      if (v === undefined || v === null) return undefined;
      if (typeof v === 'string') return v;
      if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
        const o = v as Record<string, unknown>;
        return {
          content: o.content as string,
          lstrip: !!o.lstrip,
          rstrip: !!o.rstrip,
          singleWord: !!o.single_word,
          special: o.special === undefined ? undefined : !!o.special,
        };
      }
      throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${dir}: ${key} is neither a string nor an AddedToken object`);
    };

    // Special tokens: tokenizer_config.json, overridden by special_tokens_map.json unless the config
    // has `added_tokens_decoder` (then transformers ignores special_tokens_map.json).
    const hasAddedDecoder = config.added_tokens_decoder !== undefined && config.added_tokens_decoder !== null;
    const settings: Record<string, unknown> = { ...config };
    const addedTokens: Array<AddedTokenSpec & { id: number }> = [];
    if (hasAddedDecoder) {
      const dec = config.added_tokens_decoder as Record<string, unknown>;
      if (typeof dec !== 'object' || Array.isArray(dec)) {
        throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${where('tokenizer_config.json')}: added_tokens_decoder must be an object`);
      }
      for (const [idx, tok] of Object.entries(dec)) {
        const spec = asSpec(tok, `added_tokens_decoder[${idx}]`);
        const id = Number(idx);
        if (!spec || !Number.isInteger(id) || id < 0) {
          throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${where('tokenizer_config.json')}: bad added_tokens_decoder entry ${idx}`);
        }
        addedTokens.push({ ...(typeof spec === 'string' ? { content: spec } : spec), id });
      }
    } else {
      for (const [k, v] of Object.entries(map)) {
        if (k === 'additional_special_tokens' && Array.isArray(v)) {
          const prev = Array.isArray(settings.additional_special_tokens) ? (settings.additional_special_tokens as unknown[]) : [];
          const merged = [...prev];
          for (const t of v) if (!merged.some((m) => contentOf(asSpec(m, k)!) === contentOf(asSpec(t, k)!))) merged.push(t);
          settings[k] = merged;
        } else {
          settings[k] = v;
        }
      }
      if (addedJson) {
        const specials = new Set<string>();
        for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
          const s = asSpec(settings[key], key);
          if (s !== undefined) specials.add(contentOf(s));
        }
        for (const [tok, id] of Object.entries(addedJson)) {
          if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
            throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${where('added_tokens.json')}: id of ${JSON.stringify(tok)} is not a non-negative integer`);
          }
          addedTokens.push({ content: tok, id, special: specials.has(tok) });
        }
      }
    }
    const additional = Array.isArray(settings.additional_special_tokens)
      ? (settings.additional_special_tokens as unknown[]).map((t) => asSpec(t, 'additional_special_tokens')!)
      : undefined;
    const mml = settings.model_max_length;
    try {
      return new CLIPTokenizer({
        vocab: vocab as Record<string, number>,
        merges,
        bosToken: asSpec(settings.bos_token, 'bos_token'),
        eosToken: asSpec(settings.eos_token, 'eos_token'),
        unkToken: asSpec(settings.unk_token, 'unk_token'),
        padToken: asSpec(settings.pad_token, 'pad_token'),
        additionalSpecialTokens: additional,
        addedTokens,
        // Configs without a limit store int(1e30); SD always means 77.
        modelMaxLength: typeof mml === 'number' && Number.isInteger(mml) && mml >= 2 && mml <= 1e6 ? mml : DEFAULT_MAX_LENGTH,
        cleanUpTokenizationSpaces: settings.clean_up_tokenization_spaces === true,
      });
    } catch (e) {
      if (e instanceof LetheError) throw new LetheError(ErrorCodes.BAD_CHECKPOINT, `${dir}: ${e.reason}`);
      throw e;
    }
  }

  constructor(opts: CLIPTokenizerOptions) {
    if (!opts || typeof opts.vocab !== 'object' || opts.vocab === null || !Array.isArray(opts.merges)) {
      throw badArg('CLIPTokenizer needs { vocab, merges }');
    }
    this.encoder = new Map(Object.entries(opts.vocab));
    this.decoder = new Map();
    for (const [tok, id] of this.encoder) this.decoder.set(id, tok);
    this.vocabSize = this.encoder.size;

    // bpe_ranks = dict(zip(merges, range(n))): a repeated pair keeps its last rank.
    this.ranks = new Map();
    const lines = opts.merges.slice(0, MAX_MERGES);
    for (let i = 0; i < lines.length; i++) {
      const parts = pySplit(lines[i]);
      if (parts.length === 2) this.ranks.set(`${parts[0]} ${parts[1]}`, i);
    }

    for (const t of opts.addedTokens ?? []) {
      const tok = toAdded(t, false);
      this.addedDecoder.set(t.id, tok);
      this.addedEncoder.set(tok.content, t.id);
    }

    const bos = opts.bosToken ?? '<|startoftext|>';
    const eos = opts.eosToken ?? '<|endoftext|>';
    const unk = opts.unkToken ?? '<|endoftext|>';
    const pad = opts.padToken ?? '<|endoftext|>';
    // all_special_tokens_extended, in SPECIAL_TOKENS_ATTRIBUTES order, unique by content.
    const specials: Array<string | AddedTokenSpec> = [];
    for (const t of [bos, eos, unk, pad, ...(opts.additionalSpecialTokens ?? [])]) {
      if (!contentOf(t)) throw badArg('special tokens must be non-empty strings');
      if (!specials.some((s) => contentOf(s) === contentOf(t))) specials.push(t);
    }
    this.specialTokens = specials.map(contentOf);
    this.specialSet = new Set(this.specialTokens);
    // _add_tokens(special_tokens=True): a special token gets its vocab id, or a new id after the vocab.
    const current = new Set<string>([...this.encoder.keys(), ...this.addedEncoder.keys()]);
    let nextId = current.size;
    for (const t of specials) {
      const content = contentOf(t);
      if (this.addedEncoder.has(content)) continue;
      let id = this.encoder.get(content);
      if (id === undefined) {
        id = nextId++;
        current.add(content);
      }
      this.addedDecoder.set(id, toAdded(t, true));
      this.addedEncoder.set(content, id);
    }
    for (const tok of this.addedDecoder.values()) this.trie.add(tok.content);

    this.bosToken = contentOf(bos);
    this.eosToken = contentOf(eos);
    this.unkToken = contentOf(unk);
    this.padToken = contentOf(pad);
    const unkId = this.encoder.get(this.unkToken) ?? this.addedEncoder.get(this.unkToken);
    if (unkId === undefined) throw badArg(`unknown token ${JSON.stringify(this.unkToken)} has no id`);
    this.unkTokenId = unkId;
    this.bosTokenId = this.tokenToId(this.bosToken);
    this.eosTokenId = this.tokenToId(this.eosToken);
    this.padTokenId = this.tokenToId(this.padToken);
    this.specialIds = new Set(this.specialTokens.map((t) => this.tokenToId(t)));

    // _decode's legacy_added_tokens: (added - special) | {additional special tokens with id >= vocab_size}
    this.legacyAdded = new Set([...this.addedEncoder.keys()].filter((t) => !this.specialSet.has(t)));
    for (const t of opts.additionalSpecialTokens ?? []) {
      if (this.tokenToId(contentOf(t)) >= this.vocabSize) this.legacyAdded.add(contentOf(t));
    }

    const mml = opts.modelMaxLength ?? DEFAULT_MAX_LENGTH;
    if (!Number.isInteger(mml) || mml < 2) throw badArg(`modelMaxLength must be an integer >= 2, got ${mml}`);
    this.modelMaxLength = mml;
    this.cleanUpSpaces = !!opts.cleanUpTokenizationSpaces;
  }

  /** `convert_tokens_to_ids` for one token: added tokens, then the vocab, then the unknown token. */
  tokenToId(token: string): number {
    return this.addedEncoder.get(token) ?? this.encoder.get(token) ?? this.unkTokenId;
  }

  /** The token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.addedDecoder.get(id)?.content ?? this.decoder.get(id);
  }

  /** BPE tokens without BOS/EOS (`CLIPTokenizer.tokenize`). */
  tokenize(text: string): string[] {
    if (typeof text !== 'string') throw badArg(`text must be a string, got ${typeof text}`);
    const pieces = this.trie.split(text);
    // lstrip / rstrip / single_word of the added tokens that were cut out
    for (let i = 0; i < pieces.length; i++) {
      const id = this.addedEncoder.get(pieces[i]);
      if (id === undefined) continue;
      const tok = this.addedDecoder.get(id)!;
      const left = i > 0 ? pieces[i - 1] : null;
      const right = i < pieces.length - 1 ? pieces[i + 1] : null;
      if (tok.rstrip && right) pieces[i + 1] = pyLstrip(right);
      if (tok.lstrip && left) pieces[i - 1] = pyRstrip(left);
      if (tok.singleWord && left && !left.endsWith(' ')) {
        pieces[i - 1] += pieces[i];
        pieces[i] = '';
      } else if (tok.singleWord && right && !right.startsWith(' ')) {
        pieces[i + 1] = pieces[i] + pieces[i + 1];
        pieces[i] = '';
      }
    }
    const out: string[] = [];
    for (const piece of pieces) {
      if (!piece) continue;
      if (this.addedEncoder.has(piece)) out.push(piece);
      else this.tokenizePiece(piece, out);
    }
    return out;
  }

  /** `CLIPTokenizer._tokenize` (no ftfy). */
  private tokenizePiece(text: string, out: string[]): void {
    // U+0345 (combining ypogegrammeni, Mn) case-folds to a Greek iota. Under IGNORECASE the Python
    // `regex` module lets it match neither `[\p{L}]` nor `[^\s\p{L}\p{N}]`, so `findall` skips it
    // and it splits the text around it; a JavaScript /iu class does match it as a letter. Turning
    // it into a space (which no alternative matches either) gives Python's result.
    const clean = basicClean(text).replace(/\u0345/g, ' ');
    for (const m of clean.matchAll(PATTERN)) {
      const bytes = Buffer.from(m[0], 'utf8');
      let word = '';
      for (const b of bytes) word += BYTE_ENCODER[b];
      for (const t of this.bpe(word)) out.push(t);
    }
  }

  private bpe(token: string): string[] {
    const hit = this.cache.get(token);
    if (hit) return hit;
    let result: string[];
    if (token === '<|startoftext|>' || token === '<|endoftext|>') {
      result = [token]; // transformers' cache is seeded with these, without `</w>`
    } else {
      let word = token.split('');
      word[word.length - 1] += '</w>';
      while (word.length > 1) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i < word.length - 1; i++) {
          const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
          if (r !== undefined && r < bestRank) {
            bestRank = r;
            best = i;
          }
        }
        if (best < 0) break;
        const first = word[best];
        const second = word[best + 1];
        const merged: string[] = [];
        for (let i = 0; i < word.length; ) {
          if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
            merged.push(first + second);
            i += 2;
          } else {
            merged.push(word[i]);
            i += 1;
          }
        }
        word = merged;
      }
      result = word;
    }
    if (this.cache.size >= BPE_CACHE_LIMIT) this.cache.clear();
    this.cache.set(token, result);
    return result;
  }

  /**
   * BOS + tokens + EOS as `tokenizer(text, padding="max_length", max_length=maxLength, truncation=True)`:
   * truncation drops tokens from the end (EOS stays last) and `truncated` holds the dropped text.
   */
  encode(text: string, opts: EncodeOptions = {}): TokenizerEncoding {
    const maxLength = opts.maxLength ?? this.modelMaxLength;
    if (!Number.isInteger(maxLength) || maxLength < 2) throw badArg(`maxLength must be an integer >= 2, got ${maxLength}`);
    let ids = this.tokenize(text).map((t) => this.tokenToId(t));
    let truncated: string | null = null;
    if ((opts.truncation ?? true) && ids.length > maxLength - 2) {
      truncated = this.decode(ids.slice(maxLength - 2));
      ids = ids.slice(0, maxLength - 2);
    }
    const out = [this.bosTokenId, ...ids, this.eosTokenId];
    if (opts.padding ?? true) while (out.length < maxLength) out.push(this.padTokenId);
    return { ids: out, truncated };
  }

  encodeBatch(texts: string[], opts: EncodeOptions = {}): TokenizerEncoding[] {
    return texts.map((t) => this.encode(t, opts));
  }

  /** `tokenizer.decode(ids)` (skip_special_tokens=False unless asked, spaces between added tokens). */
  decode(ids: number[], opts: DecodeOptions = {}): string {
    const skip = !!opts.skipSpecialTokens;
    const tokens: string[] = [];
    for (const id of ids) {
      if (skip && this.specialIds.has(id)) continue;
      const tok = this.idToToken(id);
      if (tok === undefined) throw badArg(`token id ${id} is not in the vocabulary`);
      tokens.push(tok);
    }
    const subTexts: string[] = [];
    let current: string[] = [];
    for (const tok of tokens) {
      if (skip && this.specialSet.has(tok)) continue;
      if (this.legacyAdded.has(tok)) {
        if (current.length) {
          const s = this.tokensToString(current);
          if (s.length > 0) subTexts.push(s);
          current = [];
        }
        subTexts.push(tok);
      } else {
        current.push(tok);
      }
    }
    if (current.length) subTexts.push(this.tokensToString(current));
    const text = subTexts.join(' ');
    return (opts.cleanUpTokenizationSpaces ?? this.cleanUpSpaces) ? cleanUpTokenization(text) : text;
  }

  /** `convert_tokens_to_string`: byte-decode (invalid UTF-8 → U+FFFD), `</w>` → space, strip. */
  private tokensToString(tokens: string[]): string {
    const bytes: number[] = [];
    for (const ch of tokens.join('')) {
      const b = BYTE_DECODER.get(ch);
      if (b !== undefined) bytes.push(b);
      else for (const x of Buffer.from(ch, 'utf8')) bytes.push(x); // transformers raises KeyError here
    }
    const text = new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
    return pyStrip(text.split('</w>').join(' '));
  }
}

function cleanUpTokenization(s: string): string {
  const pairs: Array<[string, string]> = [
    [' .', '.'],
    [' ?', '?'],
    [' !', '!'],
    [' ,', ','],
    [" ' ", "'"],
    [" n't", "n't"],
    [" 'm", "'m"],
    [" 's", "'s"],
    [" 've", "'ve"],
    [" 're", "'re"],
  ];
  for (const [a, b] of pairs) s = s.split(a).join(b);
  return s;
}
