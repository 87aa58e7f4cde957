#!/usr/bin/env python3
"""Reference for seeded generation: Lethe draws initial latents and DDPM noise from torch's CPU
generator, so `seed` must reproduce diffusers with generator=torch.Generator("cpu").manual_seed(seed).
Writes test/fixtures/models/seeded-reference.safetensors from the tiny-sd1 fixture model.
Run: node scripts/python.js scripts/make_seed_fixtures.py
"""
import json
import os

import torch
from diffusers import DDPMScheduler, StableDiffusionPipeline
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "test", "fixtures", "models", "tiny-sd1")
OUT = os.path.join(ROOT, "test", "fixtures", "models", "seeded-reference.safetensors")

torch.set_num_threads(1)
pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None, requires_safety_checker=False)
pipe.set_progress_bar_config(disable=True)
tensors = {}
for seed in (0, 1234):
    tensors[f"randn.seed{seed}"] = torch.randn((2, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(seed))
pipe.scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
run = {"prompt": "a red circle", "seed": 7, "steps": 4, "guidance": 5.0, "n": 2, "height": 16, "width": 16}
with torch.no_grad():
    images = pipe(run["prompt"], num_inference_steps=run["steps"], guidance_scale=run["guidance"], num_images_per_prompt=run["n"],
                  height=run["height"], width=run["width"], generator=torch.Generator("cpu").manual_seed(run["seed"]),
                  output_type="pt").images
tensors["ddpm.images"] = images.float().contiguous()
save_file(tensors, OUT, metadata={"ddpm": json.dumps(run, sort_keys=True)})
print(OUT, {k: list(v.shape) for k, v in tensors.items()})
