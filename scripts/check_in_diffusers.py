#!/usr/bin/env python3
"""Loads a model folder (default: the bundled models/shapes-64) in diffusers' StableDiffusionPipeline
and checks that it produces the same images as Lethe from the same initial latents.
Run: node scripts/python.js scripts/check_in_diffusers.py [MODEL_DIR] [--steps 20] [--guidance 5]
Prints the max abs error per prompt and sampler; exits 1 above --tolerance."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, StableDiffusionPipeline
from safetensors.torch import load_file, save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCHEDULERS = {"ddim": DDIMScheduler, "euler": EulerDiscreteScheduler, "dpmpp-2m": DPMSolverMultistepScheduler}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=os.path.join(ROOT, "models", "shapes-64"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--prompts", nargs="*", default=["a red circle", "a striped blue star", "Sunny", "the Lethe poster"])
    a = ap.parse_args()
    torch.set_num_threads(2)
    pipe = StableDiffusionPipeline.from_pretrained(a.model, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    base_config = pipe.scheduler.config
    size = pipe.unet.config.sample_size
    vae_factor = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    results, worst = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, prompt in enumerate(a.prompts):
            latents = torch.randn((1, pipe.unet.config.in_channels, size, size), generator=torch.Generator("cpu").manual_seed(100 + i))
            lat_file = os.path.join(tmp, f"latents{i}.safetensors")
            save_file({"latents": latents.contiguous()}, lat_file)
            for name, cls in SCHEDULERS.items():
                out = os.path.join(tmp, f"ours{i}-{name}.safetensors")
                subprocess.run([ "node", os.path.join(ROOT, "bin", "lethe.js"), "generate", "--model", a.model, "--prompt", prompt,
                                 "--latents", lat_file, "--save-tensor", out, "--steps", str(a.steps), "--guidance", str(a.guidance),
                                 "--scheduler", name, "--out", os.path.join(tmp, "png"), "--json"], check=True, capture_output=True)
                ours = load_file(out)["images"]
                pipe.scheduler = cls.from_config(base_config)
                with torch.no_grad():
                    ref = pipe(prompt, num_inference_steps=a.steps, guidance_scale=a.guidance, latents=latents,
                               height=size * vae_factor, width=size * vae_factor, output_type="pt").images
                err = (ours - ref).abs().max().item()
                worst = max(worst, err)
                results.append({"prompt": prompt, "scheduler": name, "max_abs_error": err})
    print(json.dumps({"model": a.model, "steps": a.steps, "guidance": a.guidance, "results": results, "worst": worst}, indent=1))
    sys.exit(0 if worst <= a.tolerance else 1)


if __name__ == "__main__":
    main()
