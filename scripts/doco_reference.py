#!/usr/bin/env python3
"""DoCo's reference training loop (Wu et al., AAAI 2025; the authors' train.py, yongliang-wu/DoCo,
built on Concept Ablation's) on PyTorch + diffusers, for Lethe's tests and benchmark. Written here
from the paper and that code's training step; it shares Concept Ablation's reference setup
(scripts/ca_reference.py: anchors, trained tensors, the start-token detach) and draws its random
numbers from one torch CPU generator in the same order as Lethe's native loop
(native/erase/doco.cc): the discriminator's weights first (per conv: weight, bias, each
U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from torch.rand), then per step
  idx ~ U{0..N-1}^2B, eps ~ N(0, I) [2B, C, h, w], t ~ U{0..T-1}^2B.

What the authors' step does, kept here as it is:
  - real = x0-hat of the frozen (shadow) UNet on the first half with the anchor prompts; fake =
    x0-hat of the trained UNet on the first half with the target prompts (the scheduler's
    pred_original_sample, clamped if the config says clip_sample);
  - after the warm-up (step > warmup): adversarial = BCEWithLogits(D(fake), 0), preservation =
    MSE(pred on the prior half, eps); with surgery (the README's --gradient_clip) both gradients
    are taken (preservation first), each clipped to norm 1, and where cos(g_u, g_p) < 0 the model's
    gradient becomes g_u - lambda * cos * g_p / |g_p|; without, adversarial + 0.1 * w * preservation
    is backpropagated and clipped;
  - the adversarial backward also reaches the discriminator's parameters, whose gradients are not
    cleared before its own loss BCE(D(real), 0) + BCE(D(fake.detach()), 1) is added: its Adam
    (0.5, 0.999) step uses both, as the authors' code does;
  - the discriminator is in training mode (batch statistics) throughout.

Usage: doco_reference.py MODEL --target-prompt T --anchor-prompt A [...] (as ca_reference.py)
       --d-lr LR --warmup W [--no-surgery] --surgery-lambda L [--discriminator-blocks K]
Prints JSON: wall time, anchor and loop seconds, breakdown, peak RSS, loss terms per step.
"""
import argparse
import json
import math
import time

import torch
from ca_reference import AnchorTraining, add_anchor_training_args
from reference_common import peak_rss_mib

WIDTHS = [64, 128, 256, 512]


def patch_discriminator(channels, side, blocks, gen):
    """The authors' PatchGANDiscriminator, cut to `blocks` stride-2 blocks (0: the most, up to 4,
    that leave a patch grid of at least 3x3 on a side x side latent), weights from `gen`."""
    grid = lambda k: (side >> k) - 1
    if blocks == 0:
        blocks = 1
        while blocks < 4 and grid(blocks + 1) >= 3:
            blocks += 1
    layers, convs, c = [], [], channels
    for k in range(blocks):
        conv = torch.nn.Conv2d(c, WIDTHS[k], 4, stride=2, padding=1)
        layers.append(conv)
        convs.append(conv)
        if k > 0:
            layers.append(torch.nn.BatchNorm2d(WIDTHS[k]))
        layers.append(torch.nn.LeakyReLU(0.2))
        c = WIDTHS[k]
    final = torch.nn.Conv2d(c, 1, 4, padding=1)
    convs.append(final)
    layers.append(final)
    with torch.no_grad():
        for conv in convs:
            bound = 1 / math.sqrt(conv.in_channels * 16)
            conv.weight.copy_((torch.rand(conv.weight.shape, generator=gen) * 2 - 1) * bound)
            conv.bias.copy_((torch.rand(conv.bias.shape, generator=gen) * 2 - 1) * bound)
    return torch.nn.Sequential(*layers).train()


def main():
    ap = argparse.ArgumentParser()
    add_anchor_training_args(ap)
    ap.add_argument("--d-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--no-surgery", action="store_true")
    ap.add_argument("--surgery-lambda", type=float, default=1.0)
    ap.add_argument("--discriminator-blocks", type=int, default=0)
    a = ap.parse_args()
    r = AnchorTraining(a)
    unet, shadow, sched = r.pipe.unet, r.frozen_unet(), r.sched
    gen = torch.Generator("cpu").manual_seed(a.seed)
    latent = r.latents.shape[1:]
    disc = patch_discriminator(latent[0], min(latent[1], latent[2]), a.discriminator_blocks, gen)
    opt = torch.optim.AdamW(r.params(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    opt_d = torch.optim.Adam(disc.parameters(), lr=a.d_lr, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    clip_range = sched.config.clip_sample_range if sched.config.clip_sample else 0

    def pred_x0(pred, xt, t):
        alpha = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
        x0 = alpha.sqrt() * xt - (1 - alpha).sqrt() * pred if r.v_pred else (xt - (1 - alpha).sqrt() * pred) / alpha.sqrt()
        return x0.clamp(-clip_range, clip_range) if clip_range else x0

    b = a.batch
    parts = {"anchorPredictions": 0.0, "trainedForwardBackward": 0.0, "optimizer": 0.0}
    terms = {"adversarial": [], "preservation": [], "discriminator": []}
    loop_start = time.perf_counter()
    for step in range(a.iterations):
        xt, t, noise_target, pair = r.draw(gen, 2 * b)
        t1 = time.perf_counter()
        with torch.no_grad():
            real = pred_x0(shadow(xt[:b], t[:b], r.frozen["anchor"][pair[:b]]).sample.float(), xt[:b], t[:b])
        t2 = time.perf_counter()
        opt_time = 0.0
        if step > a.warmup:
            pred = unet(xt, t, torch.cat([r.states("target", pair[:b]), r.states("anchor", pair[b:])])).sample.float()
            fake = pred_x0(pred[:b], xt[:b], t[:b])
            out = disc(fake)
            adversarial = bce(out, torch.zeros_like(out))
            preservation = torch.nn.functional.mse_loss(pred[b:], noise_target[b:])
            params = r.params()
            if a.no_surgery:
                preservation = 0.1 * a.prior_weight * preservation
                opt.zero_grad()
                (adversarial + preservation).backward()
                torch.nn.utils.clip_grad_norm_(params, a.clip_grad_norm)
            else:
                # The authors' adjust_gradient: preservation's gradient first, then the adversarial one.
                opt.zero_grad()
                preservation.backward(retain_graph=True)
                torch.nn.utils.clip_grad_norm_(params, a.clip_grad_norm)
                g_p = [None if p.grad is None else p.grad.clone() for p in params]
                opt.zero_grad()
                adversarial.backward()
                torch.nn.utils.clip_grad_norm_(params, a.clip_grad_norm)
                for p, gp in zip(params, g_p):
                    if p.grad is not None and gp is not None:
                        bn = gp / (torch.linalg.norm(gp) + 1e-8)
                        an = p.grad / (torch.linalg.norm(p.grad) + 1e-8)
                        dot = torch.dot(an.flatten(), bn.flatten())
                        if dot < 0:
                            p.grad -= a.surgery_lambda * dot * bn
            t_opt = time.perf_counter()
            opt.step()
            opt.zero_grad()
            opt_time = time.perf_counter() - t_opt
            terms["adversarial"].append(adversarial.item())
            terms["preservation"].append(preservation.item())
        else:
            with torch.no_grad():
                fake = pred_x0(unet(xt[:b], t[:b], r.states("target", pair[:b])).sample.float(), xt[:b], t[:b])
            terms["adversarial"].append(None)
            terms["preservation"].append(None)
        out_real, out_fake = disc(real), disc(fake.detach())
        loss_d = bce(out_real, torch.zeros_like(out_real)) + bce(out_fake, torch.ones_like(out_fake))
        loss_d.backward()
        t3 = time.perf_counter()
        opt_d.step()
        opt_d.zero_grad()
        parts["anchorPredictions"] += t2 - t1
        parts["trainedForwardBackward"] += t3 - t2 - opt_time
        parts["optimizer"] += time.perf_counter() - t3 + opt_time
        terms["discriminator"].append(loss_d.item())
    loop = time.perf_counter() - loop_start
    r.save_delta(a.out)
    print(json.dumps({"wallSeconds": time.perf_counter() - r.start, "anchorSeconds": r.anchor_seconds, "loopSeconds": loop,
                      "breakdownSeconds": parts, "peakRssMiB": peak_rss_mib(), "terms": terms, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
