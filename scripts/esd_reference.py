#!/usr/bin/env python3
"""ESD's reference loop (Gandikota et al., train-esd.py) on PyTorch + diffusers, for Lethe's tests
and benchmark. It draws its random numbers from one torch CPU generator in the same order as
Lethe's native loop (concept, t_enc, t, z), so with the same seed both train on the same samples
and their deltas can be compared value by value.

Usage: esd_reference.py MODEL_DIR --concept TEXT[,TEXT] --method esd-x --iterations N --lr LR
       --eta ETA --start-guidance G --ddim-steps S --seed SEED --threads T --out DELTA.safetensors
Prints JSON: wall time, per-part breakdown, peak RSS, losses.
"""
import argparse
import copy
import fnmatch
import json
import time

import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from reference_common import attend, peak_rss_mib
from safetensors.torch import save_file


def in_param_set(method, name):
    if method == "esd-x":
        return ".attn2." in name
    if method == "esd-x-strict":
        return ".attn2.to_k." in name or ".attn2.to_v." in name
    if method == "esd-u":
        return ".attn2." not in name and not name.startswith(("time_embedding.", "conv_norm_out.", "conv_out."))
    if method == "esd-self":
        return ".attn1." in name
    if method == "esd-all":
        return True
    raise SystemExit(f"unknown method {method}")


class MemoryAttnProcessor:
    """diffusers' attention with memory tokens joined to the text before the key and value
    projections: K = W_k [c; P_k], V = W_v [c; P_v], one softmax over text and memory."""

    def __init__(self, k, v):
        self.k, self.v = k, v

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        b = hidden_states.shape[0]
        q = attn.to_q(hidden_states)
        kin = torch.cat([encoder_hidden_states, self.k.expand(b, -1, -1)], 1)
        vin = torch.cat([encoder_hidden_states, self.v.expand(b, -1, -1)], 1)
        k, v = attn.to_k(kin), attn.to_v(vin)
        return attend(attn, q, k, v)


class EsdSetup:
    """What ESD's and prompt memory's reference loops share: the pipeline, the concepts' and the
    empty prompt's states, the frozen UNet and its trained copy (the `param_set` tensors require
    grad, listed in `params`), the DDIM sampler and the sizes its draws need."""

    def __init__(self, a, param_set):
        torch.set_num_threads(a.threads)
        self.start = time.perf_counter()
        pipe = StableDiffusionPipeline.from_pretrained(a.model, safety_checker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        self.concepts = [c.strip() for c in a.concept.split(",") if c.strip()]
        self.uncond = self.embed("")
        self.cond = [self.embed(c) for c in self.concepts]
        self.frozen = pipe.unet.eval().requires_grad_(False)
        self.trained = copy.deepcopy(self.frozen)
        self.names = names = [n for n, _ in self.trained.named_parameters() if in_param_set(param_set, n)]
        self.params = []
        for n, p in self.trained.named_parameters():
            p.requires_grad_(n in names)
            if n in names:
                self.params.append(p)
        # CompVis' DDIM sampler, which ESD's reference uses, never clips x0; a config written for another
        # scheduler class (a DPM-Solver one without clip_sample) must not pick up DDIMScheduler's
        # default clip_sample=True. Clip only when the model's own config asks for it.
        self.sched = DDIMScheduler.from_config(pipe.scheduler.config, clip_sample=pipe.scheduler.config.get("clip_sample", False) is True)
        self.sched.set_timesteps(a.ddim_steps)
        self.S, self.T = a.ddim_steps, self.sched.config.num_train_timesteps
        self.size = pipe.unet.config.sample_size

    def embed(self, text):
        ids = self.pipe.tokenizer([text], padding="max_length", max_length=self.pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
        with torch.no_grad():
            return self.pipe.text_encoder(ids)[0]

    def draw(self, gen):
        """One iteration's draws in Lethe's order (native/erase/method.h DrawEsdStep): concept, DDIM stop step, timestep, noise."""
        S, T = self.S, self.T
        c = int(torch.randint(len(self.concepts), (1,), generator=gen))
        t_enc = int(torch.randint(S, (1,), generator=gen))
        lo, hi = round(t_enc / S * T), round((t_enc + 1) / S * T)
        t = int(torch.randint(lo, max(lo + 1, hi), (1,), generator=gen))
        z = torch.randn((1, self.pipe.unet.config.in_channels, self.size, self.size), generator=gen)
        return c, t_enc, t, z


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--concept", required=True)
    ap.add_argument("--method", default="esd-x")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--eta", type=float, default=1.0)
    ap.add_argument("--start-guidance", type=float, default=3.0)
    ap.add_argument("--ddim-steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preserve", action="append", default=[], help="a prompt whose prediction is kept (Lethe's extension; repeatable)")
    ap.add_argument("--preserve-weight", type=float, default=1.0)
    ap.add_argument("--projection-keep", action="append", default=[], help="a further prompt only the projection keeps (repeatable)")
    ap.add_argument("--preserve-projection", type=float, default=0.0, help="closed-form preservation weight (Lethe's extension; 0: off)")
    ap.add_argument("--memory-tokens", type=int, default=0, help="learnable cross-attention memory tokens (Lethe's framework option; 0: none)")
    ap.add_argument("--memory-layers", default="*", help="comma-separated globs on attn2 layer names")
    ap.add_argument("--memory-init-scale", type=float, default=0.02)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    r = EsdSetup(a, a.method)
    start, pipe, concepts, uncond, cond, frozen, trained, params, names = r.start, r.pipe, r.concepts, r.uncond, r.cond, r.frozen, r.trained, r.params, r.names
    sched, S, T, size = r.sched, r.S, r.T, r.size
    keep_states = [r.embed(p) for p in a.preserve]
    keep_emb = keep_states if a.preserve_weight > 0 else []
    gen = torch.Generator("cpu").manual_seed(a.seed)
    memory = {}
    if a.memory_tokens > 0:
        # Drawn from the run's generator before the first iteration, as Lethe's framework does.
        dim = pipe.unet.config.cross_attention_dim
        memory["k"] = torch.nn.Parameter(torch.randn((a.memory_tokens, dim), generator=gen) * a.memory_init_scale)
        memory["v"] = torch.nn.Parameter(torch.randn((a.memory_tokens, dim), generator=gen) * a.memory_init_scale)
        globs = [g.strip() for g in a.memory_layers.split(",") if g.strip()]
        layers = [n for n, m in trained.named_modules() if n.endswith(".attn2") and any(fnmatch.fnmatchcase(n, g) for g in globs)]
        processor = MemoryAttnProcessor(memory["k"], memory["v"])
        trained.set_attn_processor({n: (processor if n[: -len(".processor")] in layers else p) for n, p in trained.attn_processors.items()})
        params += [memory["k"], memory["v"]]
    opt = torch.optim.Adam(params, lr=a.lr)
    parts = {"sampling": 0.0, "frozenPredictions": 0.0, "trainedForwardBackward": 0.0, "optimizer": 0.0}
    losses = []
    loop_start = time.perf_counter()
    for _ in range(a.iterations):
        c, t_enc, t, z = r.draw(gen)
        # One kept prompt per iteration, drawn only when there are some (plain ESD's random stream is the reference's).
        kept = [keep_emb[int(torch.randint(len(keep_emb), (1,), generator=gen))]] if keep_emb else []
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
            e = frozen(torch.cat([x] * (2 + len(kept))), torch.tensor([float(t)]), torch.cat([uncond, cond[c]] + kept)).sample.chunk(2 + len(kept))
            target = e[0] - a.eta * (e[1] - e[0])
            ek = e[2] if kept else None
        target = target.clone()
        t2 = time.perf_counter()
        # Lethe's preservation term (not in ESD's reference): keep the kept prompt's prediction on the same x.
        out = trained(torch.cat([x] * (1 + len(kept))), torch.tensor([float(t)]), torch.cat([cond[c]] + kept)).sample.chunk(1 + len(kept))
        loss = torch.nn.functional.mse_loss(out[0], target)
        if kept:
            loss = loss + a.preserve_weight * torch.nn.functional.mse_loss(out[1], ek.clone())
        opt.zero_grad()
        loss.backward()
        t3 = time.perf_counter()
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
    for k, t in memory.items():
        delta[f"extra.prompt_memory.{k}"] = t.detach().clone().contiguous()
    if a.preserve_projection > 0:
        # Lethe's closed-form preservation: D' = D Ae (Ae + a Ap + r I)^-1 for the weights that read
        # the token states (second moments Ae of the erased prompts', Ap of the kept prompts').
        def second_moment(states):
            s = torch.cat(states).double().reshape(-1, states[0].shape[-1])
            return s.T @ s / s.shape[0]
        ae, ap_ = second_moment(cond), second_moment(keep_states + [r.embed(p) for p in a.projection_keep])
        m = ae + a.preserve_projection * ap_ + 1e-3 * torch.trace(ae) / ae.shape[0] * torch.eye(ae.shape[0], dtype=torch.float64)
        right = ae @ torch.linalg.inv(m)
        for k in delta:
            if k.endswith(".attn2.to_k.weight") or k.endswith(".attn2.to_v.weight"):
                delta[k] = (delta[k].double() @ right).float().contiguous()
    save_file(delta, a.out)
    print(json.dumps({"wallSeconds": time.perf_counter() - start, "loopSeconds": loop, "breakdownSeconds": parts,
                      "peakRssMiB": peak_rss_mib(), "losses": losses,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
