/**
 * src/tokenizer/clip.ts against transformers' CLIPTokenizer (4.57.1, no ftfy).
 * Reference ids: test/fixtures/tokenizer/cases.json, made by scripts/make_tokenizer_fixtures.py.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCodes } from '../src/errors';
import { CLIPTokenizer } from '../src/tokenizer';
import { ROOT, expectCode, tmpDir } from './helpers';

const FIX = path.join(ROOT, 'test', 'fixtures', 'tokenizer');
type Which = 'sd1' | 'sd2';
interface Case {
  text: string;
  sd1: number[];
  sd2: number[];
  decoded: Record<Which, string>;
  truncated: Record<Which, string | null>;
}
interface SweepGroup {
  ranges: Array<[number, number]>;
  count: number;
  sha1: string;
}
const fixture = JSON.parse(fs.readFileSync(path.join(FIX, 'cases.json'), 'utf8')) as {
  transformers: string;
  python: string;
  unicodedata: string;
  ftfy: boolean;
  cases: Case[];
  sweep: SweepGroup[];
};
const tok: Record<Which, CLIPTokenizer> = {
  sd1: CLIPTokenizer.fromDir(path.join(FIX, 'sd1')),
  sd2: CLIPTokenizer.fromDir(path.join(FIX, 'sd2')),
};
const vocab = JSON.parse(fs.readFileSync(path.join(FIX, 'sd1', 'vocab.json'), 'utf8')) as Record<string, number>;
const label = (s: string) => JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s);

test('fixture was made by transformers 4.57.1 without ftfy, with enough cases', () => {
  expect(fixture.transformers).toBe('4.57.1');
  expect(fixture.ftfy).toBe(false);
  expect(fixture.cases.length).toBeGreaterThanOrEqual(40);
  expect(fixture.cases.filter((c) => c.truncated.sd1 !== null).length).toBeGreaterThanOrEqual(3);
});

describe.each(['sd1', 'sd2'] as Which[])('%s: same ids as transformers', (which) => {
  it.each(fixture.cases.map((c) => [label(c.text), c] as const))('%s', (_name, c) => {
    const enc = tok[which].encode(c.text);
    expect(enc.ids).toEqual(c[which]);
    expect(enc.ids).toHaveLength(77);
    expect(enc.truncated).toBe(c.truncated[which]);
    expect(tok[which].decode(c[which], { skipSpecialTokens: true })).toBe(c.decoded[which]);
  });
});

test('every code point tokenizes as in transformers (sweep)', () => {
  const failures: string[] = [];
  for (const g of fixture.sweep) {
    const words: string[] = [];
    for (const [lo, hi] of g.ranges) {
      for (let cp = lo; cp <= hi; cp++) {
        const c = String.fromCodePoint(cp);
        words.push(`x${c}x ${c}`);
      }
    }
    const ids = tok.sd1.tokenize(words.join(' ')).map((t) => tok.sd1.tokenToId(t));
    const sha1 = createHash('sha1').update(ids.join(',')).digest('hex');
    if (ids.length !== g.count || sha1 !== g.sha1) {
      const first = g.ranges[0][0].toString(16);
      const last = g.ranges[g.ranges.length - 1][1].toString(16);
      failures.push(`U+${first}..U+${last}`);
    }
  }
  // A failure here can also be a Unicode version difference between this Node (ICU) and the
  // Python that made the fixture (see clip.ts), e.g. a character whose category changed.
  expect(failures).toEqual([]);
});

describe('truncation', () => {
  const long = 'a red circle and a blue star, '.repeat(20);

  test('keeps EOS last and reports the cut text', () => {
    const enc = tok.sd1.encode(long);
    expect(enc.ids).toHaveLength(77);
    expect(enc.ids[0]).toBe(tok.sd1.bosTokenId);
    expect(enc.ids[76]).toBe(tok.sd1.eosTokenId);
    expect(enc.truncated).not.toBeNull();
    const kept = tok.sd1.decode(enc.ids, { skipSpecialTokens: true });
    // what was kept and what was cut together give the whole (normalized) prompt back
    expect(`${kept} ${enc.truncated}`.replace(/ ,/g, ',')).toBe(long.trim());
    expect(long.trim().endsWith(enc.truncated!.replace(/ ,/g, ','))).toBe(true);
  });

  test('no truncation, no report', () => {
    expect(tok.sd1.encode('a red circle').truncated).toBeNull();
    expect(tok.sd1.encode('').truncated).toBeNull();
  });

  test('exactly 75 tokens fit', () => {
    const text = 'red '.repeat(75);
    expect(tok.sd1.tokenize(text)).toHaveLength(75);
    const enc = tok.sd1.encode(text);
    expect(enc.truncated).toBeNull();
    expect(enc.ids[76]).toBe(tok.sd1.eosTokenId);
    const over = tok.sd1.encode(text + 'blue');
    expect(over.truncated).toBe('blue');
    expect(over.ids).toEqual(enc.ids);
  });

  test('maxLength, padding and truncation options', () => {
    const enc = tok.sd2.encode('a red circle and a blue star', { maxLength: 6 });
    expect(enc.ids).toHaveLength(6);
    expect(enc.ids[5]).toBe(tok.sd2.eosTokenId);
    expect(enc.truncated).toBe('a blue star');
    const short = tok.sd2.encode('a red circle', { maxLength: 10, padding: false });
    expect(short.ids).toEqual([tok.sd2.bosTokenId, vocab['a</w>'], vocab['red</w>'], vocab['circle</w>'], tok.sd2.eosTokenId]);
    const whole = tok.sd1.encode(long, { truncation: false, padding: false });
    expect(whole.ids.length).toBeGreaterThan(77);
    expect(whole.truncated).toBeNull();
    expect(() => tok.sd1.encode('x', { maxLength: 1 })).toThrow(expect.objectContaining({ code: ErrorCodes.BAD_ARGUMENT }));
  });
});

describe('special tokens', () => {
  test('BOS, EOS and pad ids (SD 1 pads with <|endoftext|>, SD 2 with "!")', () => {
    for (const t of [tok.sd1, tok.sd2]) {
      expect(t.bosTokenId).toBe(vocab['<|startoftext|>']);
      expect(t.eosTokenId).toBe(vocab['<|endoftext|>']);
      expect(t.modelMaxLength).toBe(77);
    }
    expect(tok.sd1.padToken).toBe('<|endoftext|>');
    expect(tok.sd1.padTokenId).toBe(vocab['<|endoftext|>']);
    expect(tok.sd2.padToken).toBe('!');
    expect(tok.sd2.padTokenId).toBe(vocab['!']);
  });

  test('empty prompt is BOS, EOS, then padding', () => {
    const e1 = tok.sd1.encode('').ids;
    const e2 = tok.sd2.encode('').ids;
    expect(e1.slice(0, 2)).toEqual([tok.sd1.bosTokenId, tok.sd1.eosTokenId]);
    expect(new Set(e1.slice(2))).toEqual(new Set([tok.sd1.padTokenId]));
    expect(new Set(e2.slice(2))).toEqual(new Set([tok.sd2.padTokenId]));
  });

  test('SD 2 cuts "!" out as its pad token, SD 1 runs it through BPE', () => {
    expect(tok.sd2.tokenize('star!!!')).toEqual([...tok.sd2.tokenize('star'), '!', '!', '!']);
    expect(tok.sd1.tokenize('star!!!').slice(-1)[0]).toMatch(/<\/w>$/);
  });
});

describe('tokenize and decode', () => {
  test('BPE tokens carry </w> at word ends, lowercased', () => {
    expect(tok.sd1.tokenize('A Red CIRCLE')).toEqual(['a</w>', 'red</w>', 'circle</w>']);
    expect(tok.sd1.tokenize('')).toEqual([]);
    // the BPE cache gives the same answer the second time
    expect(tok.sd1.tokenize('supercalifragilistic supercalifragilistic')).toEqual([
      ...tok.sd1.tokenize('supercalifragilistic'),
      ...tok.sd1.tokenize('supercalifragilistic'),
    ]);
  });

  test.each(['a red circle', 'a striped blue star', 'the lethe poster', 'sunny', "a green heart with 3 stars café 🐱"])(
    'decode round-trips %s',
    (p) => {
      for (const t of [tok.sd1, tok.sd2]) {
        const ids = t.encode(p).ids;
        expect(t.decode(ids, { skipSpecialTokens: true })).toBe(p);
      }
      expect(tok.sd1.decode(tok.sd1.encode(p, { padding: false }).ids)).toBe(`<|startoftext|>${p} <|endoftext|>`);
    },
  );

  test('decode puts spaces where words ended, as transformers does', () => {
    const ids = tok.sd1.encode("it's a heart, 中文", { padding: false }).ids;
    expect(tok.sd1.decode(ids, { skipSpecialTokens: true })).toBe("it 's a heart , 中 文");
    expect(tok.sd1.decode(ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: true })).toBe("it's a heart, 中 文");
  });

  test('encodeBatch = encode each', () => {
    const texts = ['a red circle', '', 'Sunny'];
    expect(tok.sd2.encodeBatch(texts, { maxLength: 8 })).toEqual(texts.map((t) => tok.sd2.encode(t, { maxLength: 8 })));
  });

  test('decode of an id outside the vocabulary is an error', () => {
    expect(() => tok.sd1.decode([100000])).toThrow(expect.objectContaining({ code: ErrorCodes.BAD_ARGUMENT }));
  });

  test('constructor from vocab and merges', () => {
    const merges = fs.readFileSync(path.join(FIX, 'sd1', 'merges.txt'), 'utf8').trim().split('\n').slice(1);
    const t = new CLIPTokenizer({ vocab, merges, padToken: '!' });
    for (const c of fixture.cases.slice(0, 20)) expect(t.encode(c.text).ids).toEqual(c.sd2);
  });
});

describe('fromDir errors', () => {
  function copyFixture(): string {
    const dir = tmpDir('lethe-tok-');
    for (const f of fs.readdirSync(path.join(FIX, 'sd1'))) fs.copyFileSync(path.join(FIX, 'sd1', f), path.join(dir, f));
    return dir;
  }

  test('a copy loads, and the optional files may be absent', () => {
    const dir = copyFixture();
    fs.rmSync(path.join(dir, 'tokenizer_config.json'));
    fs.rmSync(path.join(dir, 'special_tokens_map.json'));
    const t = CLIPTokenizer.fromDir(dir);
    expect(t.encode('a red circle').ids).toEqual(fixture.cases[0].sd1);
  });

  test.each(['vocab.json', 'merges.txt'])('missing %s', async (f) => {
    const dir = copyFixture();
    fs.rmSync(path.join(dir, f));
    const e = await expectCode(() => CLIPTokenizer.fromDir(dir), ErrorCodes.BAD_CHECKPOINT);
    expect(e.message).toContain(f);
  });

  test.each(['vocab.json', 'tokenizer_config.json', 'special_tokens_map.json'])('invalid JSON in %s', async (f) => {
    const dir = copyFixture();
    fs.writeFileSync(path.join(dir, f), '{"a": 1,');
    const e = await expectCode(() => CLIPTokenizer.fromDir(dir), ErrorCodes.BAD_CHECKPOINT);
    expect(e.message).toContain(f);
    expect(e.message).toMatch(/not valid JSON/);
  });

  test('vocab.json that is not an object of ids', async () => {
    const dir = copyFixture();
    fs.writeFileSync(path.join(dir, 'vocab.json'), '["a", "b"]');
    await expectCode(() => CLIPTokenizer.fromDir(dir), ErrorCodes.BAD_CHECKPOINT);
    fs.writeFileSync(path.join(dir, 'vocab.json'), '{"a": "one"}');
    await expectCode(() => CLIPTokenizer.fromDir(dir), ErrorCodes.BAD_CHECKPOINT);
  });

  test('missing folder', async () => {
    await expectCode(() => CLIPTokenizer.fromDir(path.join(tmpDir(), 'nope')), ErrorCodes.BAD_CHECKPOINT);
  });
});
