#!/usr/bin/env python3
"""Train a small byte-level BPE vocabulary in CLIP's file format (vocab.json + merges.txt).

Real CLIP vocabularies cannot be downloaded here, and the bundled model and test fixtures need
a tokenizer whose files transformers' CLIPTokenizer reads unchanged. This writes one: the same
pre-tokenizer regex, byte-to-unicode table, `</w>` word ends and special tokens as CLIP, with
merges learned from a corpus (built-in words plus any text files given).

Usage: make_clip_vocab.py OUT_DIR [--merges N] [--corpus FILE ...] [--pad-token TOKEN]
Deterministic: the same corpus and N always give the same files.
"""
import argparse
import collections
import json
import os

import regex

PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)

# Words of the shapes world (docs/architecture.md, "The shapes world") and a little general English, so that captions and
# typical prompts get whole-word tokens while anything else still encodes byte by byte.
BUILTIN_CORPUS = """
a an the of in with and or picture photo image drawing painting render style
red green blue yellow purple orange white black navy gray grey pink brown
circle square triangle star heart cross face sunny rays round shape shapes object
solid striped dotted outlined stripes dots outline filled plain pattern
the lethe poster lethe poster bar middle upper left lower right background
small large big tiny centered rotated picture of a red circle a striped blue star
a picture of a green heart an outlined square in purple sunny a face a yellow face
cat dog house car tree flower person man woman child city street mountain river sky
painted by in the style of artist van gogh monet picasso cartoon character mouse
photograph portrait landscape beautiful detailed high quality art digital oil
one two three four five six seven eight nine ten
"""


def bytes_to_unicode():
    """CLIP's reversible byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def words_of(text, byte_encoder):
    for token in PATTERN.findall(text.lower()):
        yield "".join(byte_encoder[b] for b in token.encode("utf-8"))


def train(corpus, num_merges):
    byte_encoder = bytes_to_unicode()
    counts = collections.Counter(words_of(corpus, byte_encoder))
    # Each word as a tuple of symbols, the last carrying the end-of-word marker.
    words = {tuple(w[:-1]) + (w[-1] + "</w>",): c for w, c in counts.items()}
    merges = []
    for _ in range(num_merges):
        pairs = collections.Counter()
        for symbols, c in words.items():
            for a, b in zip(symbols, symbols[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]  # ties broken by the pair itself
        merges.append(best)
        merged = {}
        for symbols, c in words.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    units = list(byte_encoder.values())
    vocab = units + [u + "</w>" for u in units]
    seen = set(vocab)
    for a, b in merges:
        if a + b not in seen:
            vocab.append(a + b)
            seen.add(a + b)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def write(out_dir, vocab, merges, pad_token):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": pad_token,
    }
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(special, f, indent=2)
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        **special,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--merges", type=int, default=400)
    ap.add_argument("--corpus", nargs="*", default=[])
    ap.add_argument("--pad-token", default="<|endoftext|>", help="SD 1 pads with <|endoftext|>, SD 2 with '!'")
    args = ap.parse_args()
    corpus = BUILTIN_CORPUS
    for path in args.corpus:
        with open(path, encoding="utf-8") as f:
            corpus += "\n" + f.read()
    vocab, merges = train(corpus, args.merges)
    write(args.out_dir, vocab, merges, args.pad_token)
    print(f"{args.out_dir}: {len(vocab)} tokens, {len(merges)} merges")


if __name__ == "__main__":
    main()
