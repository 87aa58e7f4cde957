#!/usr/bin/env python3
"""Reference token ids for src/tokenizer/clip.ts from transformers' CLIPTokenizer.

Writes:
  test/fixtures/tokenizer/sd1/   vocab from scripts/make_clip_vocab.py, pad token <|endoftext|> (as SD 1)
  test/fixtures/tokenizer/sd2/   the same vocab, pad token "!" (as SD 2)
  test/fixtures/tokenizer/cases.json
      {"transformers": version, "python": version, "unicodedata": version, "ftfy": false,
       "cases": [{text, sd1: ids, sd2: ids, decoded: {sd1, sd2}, truncated: {sd1, sd2}}],
       "sweep": [{ranges, count, sha1}]}
  ids: tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids
  decoded: tokenizer.decode(ids, skip_special_tokens=True)
  truncated: tokenizer.decode(ids cut by truncation) or None
  sweep: every code point, in groups: {ranges: [[first, last], ...] of the group's code points,
      count, sha1} where count and sha1 (of the ids joined by ",") are those of the sd1 ids of
      "x<c>x <c> x<d>x <d> ..." tokenized without a length limit: the Unicode handling checked
      character by character. Code points the Python's unicodedata does not know are left out:
      transformers deletes them as unassigned, and which ones those are depends on the Python
      version, not on transformers.

Run: node scripts/python.js scripts/make_tokenizer_fixtures.py
Must run WITHOUT ftfy installed (transformers' default), which is what clip.ts reproduces.
"""
import hashlib
import json
import os
import subprocess
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "tokenizer")

LONG_1 = (
    "a highly detailed digital painting of a red circle and a striped blue star next to a green heart, "
    "an outlined square in purple, a dotted yellow triangle, a solid orange cross, Sunny the yellow face "
    "with eight rays, the Lethe poster on a navy background, trending on artstation, octane render, "
    "8k, ultra sharp focus, cinematic lighting, by greg rutkowski and alphonse mucha"
)
LONG_2 = " ".join(["red circle"] * 60)
LONG_3 = "!!! ".join(["star"] * 50)  # SD 2 splits every "!" out as its pad token
LONG_4 = "supercalifragilisticexpialidocious " * 8
LONG_5 = "一只红色的圆圈和蓝色的星星" * 8  # CJK: one token group per ideograph
LONG_6 = "a photo of a cat " * 15 + "<|endoftext|> and then some more words that get cut off"

TEXTS = [
    # plain prompts
    "a red circle",
    "a striped blue star",
    "a picture of a green heart",
    "an outlined square in purple",
    "Sunny",
    "the Lethe poster",
    "a photograph of a cat sitting on a chair in the style of van gogh",
    # case
    "A RED CIRCLE",
    "A Picture Of A Green Heart",
    "sUnNy ThE LeThE pOsTeR",
    # punctuation runs
    "hello, world!",
    "wow!!! really??? ...yes...",
    "a red circle; a blue star: a (green) heart [solid] {dotted} <outlined>",
    "--==##@@$$%%^^&&**~~``||\\\\//",
    "star!",
    "!!!",
    "! ! !",
    # contractions
    "it's the cat's toy",
    "don't, can't, won't",
    "they're we've I'm you'll he'd",
    "IT'S DON'T THEY'RE",
    "''s 't 're",
    "rock 'n' roll",
    # numbers
    "1234567890",
    "3.14159 and 2,718",
    "the year 2024, 100% sure, 1st 2nd 3rd",
    "x1y2z3",
    # accents
    "café",
    "naïve façade résumé",
    "CAFÉ NAÏVE",
    "cafe\u0301 (combining acute)",
    "n\u0303 a\u0308 o\u0302",
    "Zürich Ærøskøbing Łódź",
    "İstanbul ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ",
    "straße STRASSE ẞ",
    # CJK and other scripts
    "一只红色的圆圈",
    "中文English混合",
    "日本語のテキスト",
    "한국어 텍스트",
    "Привет, мир",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    # emoji
    "a cat 🐱 and a dog 🐶",
    "👍🏽 thumbs up",
    "family 👨‍👩‍👧‍👦",
    "❤️ heart",
    # control chars, tabs, newlines, whitespace
    "red\x00circle",
    "red\x07blue\x1bgreen",
    "tab\tseparated\twords",
    "line one\nline two\r\nline three",
    "   lots    of     spaces   ",
    "\u00a0non\u00a0breaking\u2003em\u3000ideographic",
    "zero\u200bwidth\ufeffchars\u200d",
    "line\u2028separator\u2029paragraph",
    "soft\u00adhyphen",
    "replacement \ufffd char",
    # misspellings
    "a rde cirlce",
    "a strpied bleu satr",
    "Sunyy the Leth postr",
    # empty and whitespace only
    "",
    " ",
    "\n\t",
    # special tokens written literally
    "<|startoftext|>",
    "<|endoftext|>",
    "a red<|endoftext|>circle",
    "a <|startoftext|> b <|endoftext|> c",
    "<|ENDOFTEXT|> upper case",
    "!<|endoftext|>",
    "<|endoftext",
    "<|startoftext|><|endoftext|>",
    # long
    LONG_1,
    LONG_2,
    LONG_3,
    LONG_4,
    LONG_5,
    LONG_6,
]

# Every code point the Python's unicodedata knows (category other than Cn), except most of the
# private-use planes 15-16, in groups of SWEEP_GROUP; each written as "x<c>x <c>" so it is seen
# inside a word and alone.
SWEEP_GROUP = 1024
SWEEP_SPANS = [(0x0000, 0xEFFFF), (0xF0000, 0xF000F), (0x10FFF0, 0x10FFFF)]


def make_vocab(folder, *extra):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_clip_vocab.py"), folder, *extra], check=True)


def sweep_groups():
    """Lists of code points, SWEEP_GROUP each."""
    cps = [
        cp
        for lo, hi in SWEEP_SPANS
        for cp in range(lo, hi + 1)
        if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) != "Cn"
    ]
    return [cps[i : i + SWEEP_GROUP] for i in range(0, len(cps), SWEEP_GROUP)]


def sweep_text(cps):
    return " ".join(f"x{chr(cp)}x {chr(cp)}" for cp in cps)


def to_ranges(cps):
    out = []
    for cp in cps:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def main():
    try:
        import ftfy  # noqa: F401

        sys.exit("ftfy is installed: CLIPTokenizer would use it; the fixtures must be made without it")
    except ImportError:
        pass
    import transformers
    from transformers import CLIPTokenizer

    sd1 = os.path.join(OUT, "sd1")
    sd2 = os.path.join(OUT, "sd2")
    make_vocab(sd1)
    make_vocab(sd2, "--pad-token", "!")
    tok = {"sd1": CLIPTokenizer.from_pretrained(sd1), "sd2": CLIPTokenizer.from_pretrained(sd2)}
    for t in tok.values():
        assert t.fix_text is None

    cases = []
    for text in TEXTS:
        case = {"text": text, "decoded": {}, "truncated": {}}
        for name, t in tok.items():
            ids = t(text, padding="max_length", max_length=77, truncation=True).input_ids
            full = t(text, add_special_tokens=False).input_ids
            case[name] = ids
            case["decoded"][name] = t.decode(ids, skip_special_tokens=True)
            case["truncated"][name] = t.decode(full[75:]) if len(full) > 75 else None
        cases.append(case)

    sweep = []
    for cps in sweep_groups():
        ids = tok["sd1"](sweep_text(cps), add_special_tokens=False).input_ids
        sha1 = hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()
        sweep.append({"ranges": to_ranges(cps), "count": len(ids), "sha1": sha1})

    out = {
        "transformers": transformers.__version__,
        "python": sys.version.split()[0],
        "unicodedata": unicodedata.unidata_version,
        "ftfy": False,
        "cases": cases,
        "sweep": sweep,
    }
    # One case per line, so that a change shows as a readable diff.
    dumps = lambda v: json.dumps(v, ensure_ascii=True, separators=(",", ":"))  # noqa: E731
    lines = [f'  {dumps(k)}: {dumps(v)},' for k, v in out.items() if k not in ("cases", "sweep")]
    for key in ("cases", "sweep"):
        rows = ",\n".join(f"    {dumps(item)}" for item in out[key])
        lines.append(f'  {dumps(key)}: [\n{rows}\n  ]' + ("," if key == "cases" else ""))
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        f.write("{\n" + "\n".join(lines) + "\n}\n")
    n_trunc = sum(1 for c in cases if c["truncated"]["sd1"] is not None)
    print(f"{len(cases)} cases ({n_trunc} truncated), {len(sweep)} sweep texts -> {os.path.join(OUT, 'cases.json')}")


if __name__ == "__main__":
    main()
