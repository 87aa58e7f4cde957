#!/usr/bin/env python3
"""Learnable prompt memory (Bui et al., arXiv 2403.12326) as Lethe reads it (docs/prompt-memory.md),
on PyTorch + diffusers with a custom attention processor (esd_reference.MemoryAttnProcessor: the
prompt joins the text before W_k / W_v), for Lethe's tests and benchmark. Random numbers come from
one torch CPU generator in the native loop's order (the prompt's k then v; per step: concept, t_enc,
t, z, and on erasure steps with kept prompts the kept one), so both train on the same samples.

Per step s of N = iterations + transfer-iterations: a transfer step when
floor((s+1) Tr / N) > floor(s Tr / N), else an erasure step.
  x_t: t_enc DDIM steps from z with guidance G by the trained UNet, prompt included.
  transfer (Adam on the prompt, lr --prompt-lr): MSE(eps_{theta,P}(x,t,c), eps*(x,t,c))
  erasure (Adam on the weights, lr --lr, and with --erasure-trains-prompt on the prompt too):
          MSE(eps_{theta,P}(x,t,c), e0 - eta (ep - e0))
          + w MSE(eps_{theta,P}(x,t,p), eps*(x,t,p)) for one kept prompt p.

Usage: prompt_memory_reference.py MODEL_DIR --concept TEXT[,TEXT] --iterations N --transfer-iterations M
       --lr LR --prompt-lr PLR --prompt-tokens m --placement GLOBS --ddim-steps S --seed SEED
       [--start DELTA.safetensors] --threads T --out DELTA.safetensors
Prints JSON: wall time, per-part breakdown, peak RSS, losses.
"""
import argparse
import fnmatch
import json
import time

import torch

from esd_reference import EsdSetup, MemoryAttnProcessor
from reference_common import peak_rss_mib
from safetensors.torch import load_file, save_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--concept", required=True)
    ap.add_argument("--params", default="esd-x", help="the weights the erasure trains (esd_reference's sets)")
    ap.add_argument("--iterations", type=int, default=1000, help="erasure steps")
    ap.add_argument("--transfer-iterations", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--prompt-lr", type=float, default=1e-5)
    ap.add_argument("--erasure-trains-prompt", action="store_true", help="erasure steps train the prompt too")
    ap.add_argument("--prompt-tokens", type=int, default=10)
    ap.add_argument("--placement", default="mid_block.*", help="comma-separated globs on attn2 layer names")
    ap.add_argument("--init-scale", type=float, default=0.02)
    ap.add_argument("--eta", type=float, default=1.0)
    ap.add_argument("--start-guidance", type=float, default=3.0)
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preserve", action="append", default=[], help="a prompt whose prediction the erasure keeps (repeatable)")
    ap.add_argument("--preserve-weight", type=float, default=1.0)
    ap.add_argument("--start", help="an earlier delta to continue (weights added, prompt replaced)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    r = EsdSetup(a, a.params)
    start, pipe, concepts, uncond, cond, frozen, trained, weights, names = r.start, r.pipe, r.concepts, r.uncond, r.cond, r.frozen, r.trained, r.params, r.names
    sched, S, T, size = r.sched, r.S, r.T, r.size
    kept = [r.embed(p) for p in a.preserve] if a.preserve_weight > 0 else []
    gen = torch.Generator("cpu").manual_seed(a.seed)
    dim = pipe.unet.config.cross_attention_dim
    memory = {
        "k": torch.nn.Parameter(torch.randn((a.prompt_tokens, dim), generator=gen) * a.init_scale),
        "v": torch.nn.Parameter(torch.randn((a.prompt_tokens, dim), generator=gen) * a.init_scale),
    }
    if a.start:
        earlier = load_file(a.start)
        with torch.no_grad():
            for n, p in trained.named_parameters():
                if f"unet.{n}" in earlier:
                    p.add_(earlier[f"unet.{n}"])
            memory["k"].copy_(earlier["extra.prompt_memory.k"])
            memory["v"].copy_(earlier["extra.prompt_memory.v"])
    globs = [g.strip() for g in a.placement.split(",") if g.strip()]
    layers = [n for n, m in trained.named_modules() if n.endswith(".attn2") and any(fnmatch.fnmatchcase(n, g) for g in globs)]
    processor = MemoryAttnProcessor(memory["k"], memory["v"])
    trained.set_attn_processor({n: (processor if n[: -len(".processor")] in layers else p) for n, p in trained.attn_processors.items()})
    opt_weights = torch.optim.Adam(weights, lr=a.lr)
    opt_prompt = torch.optim.Adam([memory["k"], memory["v"]], lr=a.prompt_lr)
    parts = {"sampling": 0.0, "frozenPredictions": 0.0, "trainedForwardBackward": 0.0, "optimizer": 0.0}
    losses = []
    N, Tr = a.iterations + a.transfer_iterations, a.transfer_iterations
    loop_start = time.perf_counter()
    for s in range(N):
        transfer = (s + 1) * Tr // N > s * Tr // N
        c, t_enc, t, z = r.draw(gen)
        keep = [kept[int(torch.randint(len(kept), (1,), generator=gen))]] if kept and not transfer else []
        t0 = time.perf_counter()
        with torch.inference_mode():
            x = z * sched.init_noise_sigma
            ctx = torch.cat([uncond, cond[c]])
            for ts in sched.timesteps[:t_enc]:
                u, k = trained(torch.cat([x, x]), ts, ctx).sample.chunk(2)
                x = sched.step(u + a.start_guidance * (k - u), ts, x).prev_sample
        x = x.clone()
        t1 = time.perf_counter()
        with torch.inference_mode():
            states = ([] if transfer else [uncond]) + [cond[c]] + keep
            e = frozen(torch.cat([x] * len(states)), torch.tensor([float(t)]), torch.cat(states)).sample.chunk(len(states))
            target = e[0] if transfer else e[0] - a.eta * (e[1] - e[0])
            ek = e[2] if keep else None
        target = target.clone()  # normal tensors again (inference tensors cannot be saved for backward)
        ek = ek.clone() if keep else None
        t2 = time.perf_counter()
        out = trained(torch.cat([x] * (1 + len(keep))), torch.tensor([float(t)]), torch.cat([cond[c]] + keep)).sample.chunk(1 + len(keep))
        loss = torch.nn.functional.mse_loss(out[0], target)
        if keep:
            loss = loss + a.preserve_weight * torch.nn.functional.mse_loss(out[1], ek)
        opts = [opt_prompt] if transfer else [opt_weights] + ([opt_prompt] if a.erasure_trains_prompt else [])
        opt_prompt.zero_grad()
        opt_weights.zero_grad()
        loss.backward()
        t3 = time.perf_counter()
        for opt in opts:
            opt.step()
        t4 = time.perf_counter()
        parts["sampling"] += t1 - t0
        parts["frozenPredictions"] += t2 - t1
        parts["trainedForwardBackward"] += t3 - t2
        parts["optimizer"] += t4 - t3
        losses.append(loss.item())
    loop = time.perf_counter() - loop_start
    base = dict(frozen.named_parameters())
    delta = {f"unet.{n}": (p.detach() - base[n]).contiguous() for n, p in trained.named_parameters() if n in names}
    delta["extra.prompt_memory.k"] = memory["k"].detach().clone().contiguous()
    delta["extra.prompt_memory.v"] = memory["v"].detach().clone().contiguous()
    save_file(delta, a.out)
    print(json.dumps({"wallSeconds": time.perf_counter() - start, "loopSeconds": loop, "breakdownSeconds": parts,
                      "peakRssMiB": peak_rss_mib(), "losses": losses, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
