"""Reference for the generation benchmark: diffusers' StableDiffusionPipeline on the same folder,
prompt, image count, sampler, steps, guidance and threads. Usage: generate_ref.py MODEL N STEPS GUIDANCE THREADS"""
import json
import sys
import time

import torch
from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

model, n, steps, guidance, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
pipe.set_progress_bar_config(disable=True)
with torch.inference_mode():
    pipe("a red circle", num_inference_steps=2, guidance_scale=guidance, num_images_per_prompt=1)  # warm-up
    start = time.perf_counter()
    pipe("a red circle", num_inference_steps=steps, guidance_scale=guidance, num_images_per_prompt=n,
         generator=torch.Generator("cpu").manual_seed(0), output_type="pt")
    seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "images_per_second": n / seconds}))
