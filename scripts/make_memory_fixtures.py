#!/usr/bin/env python3
"""Reference outputs for Lethe's cross-attention memory hook: the tiny-sd1 UNet in diffusers with an
attention processor that joins memory tokens to the text before the key and value projections
(K = W_k [c; P_k], V = W_v [c; P_v], one softmax), shared by every attn2 layer or per layer.
Run: node scripts/python.js scripts/make_memory_fixtures.py"""
import json
import os
import sys

import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "test", "fixtures", "models", "tiny-sd1")
OUT = os.path.join(ROOT, "test", "fixtures", "memory")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from esd_reference import MemoryAttnProcessor  # noqa: E402  (the one copy, shared with the reference loop)



def main():
    unet = UNet2DConditionModel.from_pretrained(os.path.join(MODEL, "unet")).eval()
    g = torch.Generator().manual_seed(11)
    c = unet.config
    x = torch.randn((2, c.in_channels, c.sample_size, c.sample_size), generator=g)
    ctx = torch.randn((2, 77, c.cross_attention_dim), generator=g)
    t = torch.tensor([321.0])
    layers = sorted(n[: -len(".processor")] for n in unet.attn_processors if n.endswith("attn2.processor"))
    tensors = {"latents": x, "context": ctx, "timestep": t}
    default = dict(unet.attn_processors)
    with torch.no_grad():
        tensors["plain"] = unet(x, t, ctx).sample
        # Shared: one memory of 4 tokens for every attn2 layer.
        k, v = torch.randn((4, c.cross_attention_dim), generator=g), torch.randn((4, c.cross_attention_dim), generator=g)
        shared = MemoryAttnProcessor(k, v)
        unet.set_attn_processor({n: (shared if n.endswith("attn2.processor") else p) for n, p in default.items()})
        tensors.update({"shared.k": k, "shared.v": v, "shared.out": unet(x, t, ctx).sample})
        # Per layer: 2 and 3 tokens on the first and last attn2 layers, none elsewhere.
        per = {}
        for i, (name, m) in enumerate([(layers[0], 2), (layers[-1], 3)]):
            k, v = torch.randn((m, c.cross_attention_dim), generator=g), torch.randn((m, c.cross_attention_dim), generator=g)
            per[name] = MemoryAttnProcessor(k, v)
            tensors[f"layer{i}.k"], tensors[f"layer{i}.v"] = k, v
        unet.set_attn_processor({n: per.get(n[: -len(".processor")], p) for n, p in default.items()})
        tensors["perlayer.out"] = unet(x, t, ctx).sample
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "unet-memory.safetensors"),
              metadata={"layers": json.dumps(layers), "perlayer": json.dumps([layers[0], layers[-1]])})
    print(json.dumps({"layers": len(layers), "max_shared_change": float((tensors["shared.out"] - tensors["plain"]).abs().max())}))


if __name__ == "__main__":
    main()
