#!/usr/bin/env python3
"""Few-shot text-encoder unlearning's reference training loop (Fuchi & Takagi, BMVC 2024; train.py
of fmp453/few-shot-erasing) on PyTorch + transformers + diffusers, for Lethe's tests and
benchmark. Written here from the paper and the reference's description: gradient ascent on the
denoising loss, the UNet frozen, torch.optim.Adam on the chosen text-encoder parameters. It draws
its random numbers from one torch CPU generator in the same order as Lethe's native loop
(native/erase/fewshot.cc) so that, from the same images and seed, both train on the same samples:
  zero-shot latents ~ U[0, 1) (before the first step, when --zero-shot);
  per epoch: a permutation of the images; per batch: template indices ~ U{0..P-1}^b,
  eps ~ N(0, I) [b, C, h, w], t ~ U{0..T-1}^b.
The reference draws the templates from Python's `random` and the rest from torch's global
generator, and samples the VAE posterior; here the posterior's mean is used, as Lethe does.

Images: --images DIR (PNG/JPEG/WebP, read as the reference does: PIL, RGB, resized to the model's
resolution with bicubic, mirrored with probability 1/2 unless --no-flip (which ones: Lethe's rule,
below), to [-1, 1]), --latents FILE (a safetensors file with `latents`,
scaled), or --zero-shot (the reference's torch.rand latents, one per batch item).

Usage: fewshot_reference.py MODEL --prompt P [...] (--images DIR | --latents F | --zero-shot)
       --te-params mlp-final-attn|mlp|attn|all|embedding --epochs E --batch B --lr LR --seed S
       --threads K --out DELTA.safetensors [--save-latents F]
Prints JSON: wall time, encoding and loop seconds, per-part breakdown, peak RSS, losses.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from PIL import Image
from reference_common import peak_rss_mib
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel, CLIPTokenizer


def in_param_set(params, name, last):
    """The reference's freeze_and_unfreeze_text_encoder, by transformers parameter names."""
    mlp = ".mlp.fc1." in name or ".mlp.fc2." in name
    attn = ".self_attn." in name
    if params == "mlp-final-attn":
        return mlp or f"layers.{last}.self_attn." in name
    if params == "mlp":
        return mlp
    if params == "attn":
        return attn
    if params == "all":
        return True
    if params in ("embedding", "concept-embedding"):
        return name.endswith("token_embedding.weight")
    raise SystemExit(f"unknown parameter set {params}")


M32 = 0xFFFFFFFF


def hash32(x):
    """Lethe's hash32 (src/world/rng.ts), in 32-bit unsigned arithmetic."""
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def mix_seed(seed, index):
    s = hash32((seed & M32) ^ hash32(((seed >> 32) & M32) ^ 0x9E3779B9))
    return hash32(s ^ hash32(((index & M32) * 0x9E3779B1 & M32) ^ hash32(((index >> 32) + 0x632BE5AB) & M32)))


def flips(seed, n):
    """Which images the loader mirrors: the reference's RandomHorizontalFlip(p=0.5) per image,
    decided as Lethe decides it (src/erase/methods/fewshot.ts, imageFlips)."""
    return [hash32(mix_seed(seed, i)) & 1 == 1 for i in range(n)]


def read_images(folder, size, seed, flip):
    files = sorted(f for f in os.listdir(folder) if os.path.splitext(f)[1].lower() in (".png", ".jpg", ".jpeg", ".webp"))
    mirrored = flips(seed, len(files)) if flip else [False] * len(files)
    out = []
    for f, m in zip(files, mirrored):
        image = Image.open(os.path.join(folder, f)).convert("RGB").resize((size, size), Image.BICUBIC)
        if m:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        out.append(torch.from_numpy(np.array(image).astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1))
    return torch.stack(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompt", action="append", required=True)
    ap.add_argument("--images")
    ap.add_argument("--latents")
    ap.add_argument("--zero-shot", action="store_true")
    ap.add_argument("--save-latents")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--te-params", default="mlp-final-attn")
    ap.add_argument("--concept", action="append", help="concept-embedding (Lethe's): the concepts whose token rows train")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.98)
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--weight-decay", type=float, default=1e-8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    start = time.perf_counter()
    tokenizer = CLIPTokenizer.from_pretrained(a.model, subfolder="tokenizer")
    te = CLIPTextModel.from_pretrained(a.model, subfolder="text_encoder")
    unet = UNet2DConditionModel.from_pretrained(a.model, subfolder="unet")
    sched = DDPMScheduler.from_pretrained(a.model, subfolder="scheduler")
    gen = torch.Generator("cpu").manual_seed(a.seed)
    t0 = time.perf_counter()
    if a.latents:
        latents = load_file(a.latents)["latents"].float()
    elif a.images:
        vae = AutoencoderKL.from_pretrained(a.model, subfolder="vae")
        size = unet.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1)
        with torch.no_grad():
            latents = vae.encode(read_images(a.images, size, a.seed, not a.no_flip)).latent_dist.mean * vae.config.scaling_factor
        if a.save_latents:
            save_file({"latents": latents.contiguous()}, a.save_latents)
    elif a.zero_shot:
        latents = torch.rand((a.batch, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size), generator=gen)
    else:
        raise SystemExit("give --images, --latents or --zero-shot")
    encode_seconds = time.perf_counter() - t0

    unet.requires_grad_(False)
    te.requires_grad_(False)
    last = te.config.num_hidden_layers - 1
    trained = []
    for n, p in te.named_parameters():
        if in_param_set(a.te_params, n, last):
            p.requires_grad_(True)
            trained.append((f"text_encoder.{n}", p, p.detach().clone()))
    if not trained:
        raise SystemExit("the parameter set matches nothing")
    ids = tokenizer(a.prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt").input_ids
    T = sched.config.num_train_timesteps
    v_pred = sched.config.prediction_type == "v_prediction"
    weight_decay = a.weight_decay
    if a.te_params == "concept-embedding":
        # Lethe's addition: only the rows of the concepts' tokens get a gradient, and the L2 term
        # is theirs alone (native/erase/fewshot.cc).
        rows = sorted({tokenizer.convert_tokens_to_ids(t) for c in (a.concept or []) for t in tokenizer.tokenize(c)})
        if not rows:
            raise SystemExit("concept-embedding needs --concept")
        (_, weight, _), = trained
        mask = torch.zeros((weight.shape[0], 1))
        mask[rows] = 1.0
        values, wd = weight.detach(), a.weight_decay
        weight.register_hook(lambda g: (g + wd * values) * mask)
        weight_decay = 0.0
    opt = torch.optim.Adam([p for _, p, _ in trained], lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps, weight_decay=weight_decay)
    N = latents.shape[0]
    parts = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    losses = []
    loop_start = time.perf_counter()
    for _ in range(a.epochs):
        order = torch.randperm(N, generator=gen)
        for s in range(math.ceil(N / a.batch)):
            idx = order[s * a.batch:(s + 1) * a.batch]
            b = idx.shape[0]
            prompt = torch.randint(len(a.prompt), (b,), generator=gen)
            eps = torch.randn((b, *latents.shape[1:]), generator=gen)
            t = torch.randint(T, (b,), generator=gen)
            x0 = latents[idx]
            xt = sched.add_noise(x0, eps, t)
            target = sched.get_velocity(x0, eps, t) if v_pred else eps
            t1 = time.perf_counter()
            states = te(ids[prompt])[0]
            out = unet(xt, t, states).sample
            loss = -torch.nn.functional.mse_loss(out.float(), target.float())
            t2 = time.perf_counter()
            opt.zero_grad()
            loss.backward()
            t3 = time.perf_counter()
            opt.step()
            t4 = time.perf_counter()
            parts["forward"] += t2 - t1
            parts["backward"] += t3 - t2
            parts["optimizer"] += t4 - t3
            losses.append(loss.item())
    loop = time.perf_counter() - loop_start
    delta = {name: (p.detach() - base).contiguous() for name, p, base in trained}
    save_file(delta, a.out)
    print(json.dumps({"wallSeconds": time.perf_counter() - start, "encodeSeconds": encode_seconds, "loopSeconds": loop,
                      "breakdownSeconds": parts, "peakRssMiB": peak_rss_mib(), "losses": losses, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
