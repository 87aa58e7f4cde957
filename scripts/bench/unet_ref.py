"""Reference for the UNet benchmark: diffusers' UNet2DConditionModel with random weights, built from
the same config, same batch, latent size, threads and timing loop as Lethe's benchUnet; also counts
the FLOPs of one forward and one forward+backward (torch.utils.flop_counter), shared by both sides.
Usage: unet_ref.py CONFIG BATCH LATENT TOKENS ITERATIONS THREADS"""
import json
import sys
import time

import torch
from diffusers import UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode

config, batch, latent, tokens, iterations, threads = sys.argv[1], *map(int, sys.argv[2:7])
torch.set_num_threads(threads)
torch.manual_seed(0)
with open(config) as f:
    cfg = json.load(f)
unet = UNet2DConditionModel.from_config(cfg)
x = torch.randn(batch, unet.config.in_channels, latent, latent)
ctx = torch.randn(batch, tokens, unet.config.cross_attention_dim)
t = torch.full((1,), 500.0)


def forward():
    with torch.inference_mode():
        unet(x, t, ctx).sample


def forward_backward():
    unet.zero_grad(set_to_none=False)  # the same as the native side: gradients stay allocated
    unet(x, t, ctx).sample.pow(2).mean().backward()


out = {"parameters": sum(p.numel() for p in unet.parameters()), "threads": torch.get_num_threads()}
for name, fn in (("forward", forward), ("forward_backward", forward_backward)):
    with FlopCounterMode(display=False) as counter:
        fn()
    out[name + "_flops"] = counter.get_total_flops()
    fn()  # warm-up, as the native side
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    out[name + "_seconds"] = times
print(json.dumps(out))
