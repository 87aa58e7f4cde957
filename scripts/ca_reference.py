#!/usr/bin/env python3
"""Concept Ablation's reference training loop (Kumari et al., ICCV 2023; the diffusers version of
the authors' train.py) on PyTorch + diffusers, for Lethe's tests and benchmark. Written here from
the paper and the reference's description; it draws its random numbers from one torch CPU
generator in the same order as Lethe's native loop (native/erase/ca.cc):
  idx ~ U{0..N-1}^n, eps ~ N(0, I) [n, C, h, w], t ~ U{0..T-1}^n  (n = batch, doubled with prior)
so with the same anchors and seed both train on the same samples and their deltas compare value by
value.

Anchors: --anchors FILE (a safetensors file with `latents` [N, C, h, w], scaled, and `prompt_index`
[N]) or --anchor-images N, which generates them as the reference does with diffusers'
StableDiffusionPipeline (DPM-Solver++, --anchor-steps, --anchor-guidance), image k from anchor
prompt k mod P in chunks of 25 whose initial latents come from a CPU generator seeded seed + chunk,
stored as 8-bit images and encoded to the VAE posterior's mean times the scaling factor (as Lethe
caches them); --save-anchors FILE keeps them.

Usage: ca_reference.py MODEL --target-prompt T --anchor-prompt A [...] --loss model|noise
       --params xattn|attn|full|embedding --iterations N --lr LR --batch B --prior-weight W
       --seed S --threads K --out DELTA.safetensors
Prints JSON: wall time, anchor generation and loop seconds, per-part breakdown, peak RSS, losses.
"""
import argparse
import copy
import json
import time

import numpy as np
import torch
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, StableDiffusionPipeline
from diffusers.models.attention_processor import AttnProcessor2_0
from reference_common import attend, peak_rss_mib
from safetensors.torch import load_file, save_file

CHUNK = 25


def in_param_set(params, component, name):
    if params == "xattn":
        return component == "unet" and (".attn2.to_k." in name or ".attn2.to_v." in name)
    if params == "attn":
        return component == "unet" and (".attn1." in name or ".attn2." in name)
    if params == "full":
        return component == "unet"
    if params == "embedding":
        return component == "text_encoder" and name.endswith("token_embedding.weight")
    raise SystemExit(f"unknown parameter set {params}")


class DetachStartTokenProcessor:
    """diffusers' cross-attention with the start token's key and value detached, as the
    reference's attention processor does while it trains (values unchanged, no gradient)."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        q = attn.to_q(hidden_states)
        k, v = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        keep = torch.ones_like(k)
        keep[:, :1, :] = 0.0
        k = keep * k + (1 - keep) * k.detach()
        v = keep * v + (1 - keep) * v.detach()
        return attend(attn, q, k, v)




def generate_anchors(pipe, prompts, n, steps, guidance, seed):
    """Anchor images as the reference makes them (the base pipeline, DPM-Solver++), 8-bit, encoded."""
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    images, latents = [], []
    for c in range((n + CHUNK - 1) // CHUNK):
        ids = [(c * CHUNK + j) % len(prompts) for j in range(min(CHUNK, n - c * CHUNK))]
        g = torch.Generator("cpu").manual_seed(seed + c)
        with torch.no_grad():
            out = pipe([prompts[i] for i in ids], num_inference_steps=steps, guidance_scale=guidance, generator=g,
                       height=size, width=size, output_type="np").images
        img = np.round(np.clip(out, 0, 1) * 255) / 255  # the reference saves them as image files
        x = torch.from_numpy(img).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            mean = pipe.vae.encode(x * 2 - 1).latent_dist.mean
        images.append(x)
        latents.append(mean * pipe.vae.config.scaling_factor)
    index = torch.tensor([k % len(prompts) for k in range(n)], dtype=torch.int64)
    return torch.cat(images), torch.cat(latents), index


def add_anchor_training_args(ap):
    """The options Concept Ablation and DoCo (scripts/doco_reference.py) share."""
    ap.add_argument("model")
    ap.add_argument("--target-prompt", action="append", required=True)
    ap.add_argument("--anchor-prompt", action="append", required=True)
    ap.add_argument("--anchors", help="safetensors file with latents and prompt_index")
    ap.add_argument("--anchor-images", type=int, default=0)
    ap.add_argument("--anchor-steps", type=int, default=25)
    ap.add_argument("--anchor-guidance", type=float, default=6.0)
    ap.add_argument("--save-anchors")
    ap.add_argument("--params", default="xattn")
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--lr", type=float, default=8e-6)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--prior-weight", type=float, default=1.0)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--clip-grad-norm", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)


class AnchorTraining:
    """What both loops set up: the pipeline, the anchors, the trained tensors (requires_grad, with
    their base values), the start-token detach, the prompts' states and the DDPM schedule."""

    def __init__(self, a):
        if len(a.target_prompt) != len(a.anchor_prompt):
            raise SystemExit("as many target prompts as anchor prompts")
        torch.set_num_threads(a.threads)
        self.start = time.perf_counter()
        pipe = StableDiffusionPipeline.from_pretrained(a.model, safety_checker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        t0 = time.perf_counter()
        if a.anchors:
            f = load_file(a.anchors)
            self.latents, self.index = f["latents"].float(), f["prompt_index"].long()
        else:
            images, self.latents, self.index = generate_anchors(pipe, a.anchor_prompt, a.anchor_images, a.anchor_steps, a.anchor_guidance, a.seed)
            if a.save_anchors:
                save_file({"images": images.contiguous(), "latents": self.latents.contiguous(), "prompt_index": self.index}, a.save_anchors)
        self.anchor_seconds = time.perf_counter() - t0
        self.pipe = pipe
        unet, te = pipe.unet, pipe.text_encoder
        unet.requires_grad_(False)
        te.requires_grad_(False)
        self.trained = []
        for component, module in (("unet", unet), ("text_encoder", te)):
            for n, p in module.named_parameters():
                if in_param_set(a.params, component, n):
                    p.requires_grad_(True)
                    self.trained.append((f"{component}.{n}", p, p.detach().clone()))
        if not self.trained:
            raise SystemExit("the parameter set matches nothing")
        unet.set_attn_processor({n: (DetachStartTokenProcessor() if ".attn2." in n else p) for n, p in unet.attn_processors.items()})
        self.trains_te = any(n.startswith("text_encoder.") for n, _, _ in self.trained)

        def ids(texts):
            return pipe.tokenizer(texts, padding="max_length", max_length=pipe.tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids

        self.ids = {"target": ids(a.target_prompt), "anchor": ids(a.anchor_prompt)}
        with torch.no_grad():
            self.frozen = {k: te(v)[0] for k, v in self.ids.items()}
        self.sched = DDPMScheduler.from_config(pipe.scheduler.config)
        self.T = self.sched.config.num_train_timesteps
        self.v_pred = self.sched.config.prediction_type == "v_prediction"

    def frozen_unet(self):
        """A frozen copy of the base UNet (DoCo's shadow model), made before any training step."""
        shadow = copy.deepcopy(self.pipe.unet).requires_grad_(False)
        shadow.set_attn_processor(AttnProcessor2_0())
        return shadow

    def states(self, which, idx):
        if self.trains_te:
            return self.pipe.text_encoder(self.ids[which][idx])[0]
        return self.frozen[which][idx]

    def params(self):
        return [p for _, p, _ in self.trained]

    def draw(self, gen, n):
        """One step's samples, in the native loops' order: idx, eps, t; then x_t and the noise target."""
        idx = torch.randint(self.latents.shape[0], (n,), generator=gen)
        eps = torch.randn((n, *self.latents.shape[1:]), generator=gen)
        t = torch.randint(self.T, (n,), generator=gen)
        x0 = self.latents[idx]
        xt = self.sched.add_noise(x0, eps, t)
        noise_target = self.sched.get_velocity(x0, eps, t) if self.v_pred else eps
        return xt, t, noise_target, self.index[idx]

    def save_delta(self, path):
        save_file({name: (p.detach() - base).contiguous() for name, p, base in self.trained}, path)


def main():
    ap = argparse.ArgumentParser()
    add_anchor_training_args(ap)
    ap.add_argument("--loss", choices=["model", "noise"], default="model")
    a = ap.parse_args()
    r = AnchorTraining(a)
    unet = r.pipe.unet
    opt = torch.optim.AdamW(r.params(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    gen = torch.Generator("cpu").manual_seed(a.seed)
    b = a.batch
    n = 2 * b if a.prior_weight > 0 else b
    parts = {"anchorPredictions": 0.0, "trainedForwardBackward": 0.0, "optimizer": 0.0}
    losses = []
    loop_start = time.perf_counter()
    for _ in range(a.iterations):
        xt, t, noise_target, pair = r.draw(gen, n)
        t1 = time.perf_counter()
        if a.loss == "model":
            with torch.no_grad():
                target = unet(xt[:b], t[:b], r.states("anchor", pair[:b])).sample.float()
        else:
            target = noise_target[:b]
        t2 = time.perf_counter()
        ctx = r.states("target", pair[:b])
        if n > b:
            ctx = torch.cat([ctx, r.states("anchor", pair[b:])])
        out = unet(xt, t, ctx).sample.float()
        loss = torch.nn.functional.mse_loss(out[:b], target)
        if n > b:
            loss = loss + a.prior_weight * torch.nn.functional.mse_loss(out[b:], noise_target[b:])
        opt.zero_grad()
        loss.backward()
        if a.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(r.params(), a.clip_grad_norm)
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        parts["anchorPredictions"] += t2 - t1
        parts["trainedForwardBackward"] += t3 - t2
        parts["optimizer"] += t4 - t3
        losses.append(loss.item())
    loop = time.perf_counter() - loop_start
    r.save_delta(a.out)
    print(json.dumps({"wallSeconds": time.perf_counter() - r.start, "anchorSeconds": r.anchor_seconds, "loopSeconds": loop,
                      "breakdownSeconds": parts, "peakRssMiB": peak_rss_mib(), "losses": losses, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
