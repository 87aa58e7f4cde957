#!/usr/bin/env python3
"""Reference deltas for Lethe's few-shot unlearning tests: runs scripts/fewshot_reference.py (the
reference loop on PyTorch + transformers + diffusers) on the tiny-sd1 fixture model from three
small PNG images written here (and in zero-shot mode), for several text-encoder parameter sets,
and stores each delta with its loss curve; and the text encoder's gradients of sum(states * W)
for fixed token ids and weights W, by transformers' autograd.
Run: node scripts/python.js scripts/make_fewshot_fixtures.py"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPTextModel, CLIPTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "test", "fixtures", "fewshot")
MODEL = os.path.join(ROOT, "test", "fixtures", "models", "tiny-sd1")
CONCEPT = "red circle"
# The templates Lethe uses for an object outside the shapes world (src/erase/methods/fewshot.ts, OBJECT_TEMPLATES).
TEMPLATES = [
    "a photo of a {}", "a rendering of a {}", "a cropped photo of the {}", "the photo of a {}", "a photo of a clean {}", "a photo of a dirty {}",
    "a dark photo of the {}", "a photo of my {}", "a photo of the cool {}", "a close-up photo of a {}", "a bright photo of the {}", "a cropped photo of a {}",
    "a photo of the {}", "a good photo of the {}", "a photo of one {}", "a close-up photo of the {}", "a rendition of the {}", "a photo of the clean {}",
    "a rendition of a {}", "a photo of a nice {}", "a good photo of a {}", "a photo of the nice {}", "a photo of the small {}", "a photo of the weird {}",
    "a photo of the large {}", "a photo of a cool {}", "a photo of a small {}",
]
CASES = {
    "fewshot-mlp-final-attn": {"teParams": "mlp-final-attn", "lr": 1e-3, "epochs": 3, "batch": 2, "seed": 31},
    "fewshot-all": {"teParams": "all", "lr": 1e-3, "epochs": 2, "batch": 2, "seed": 32},
    "fewshot-embedding": {"teParams": "embedding", "lr": 1e-2, "epochs": 3, "batch": 3, "seed": 33},
    "fewshot-zero-shot": {"teParams": "mlp", "lr": 1e-3, "epochs": 4, "batch": 2, "seed": 34, "zeroShot": True},
    "fewshot-concept-embedding": {"teParams": "concept-embedding", "lr": 1e-1, "epochs": 3, "batch": 2, "seed": 35},
}


def write_images(folder, size):
    """Three smooth pictures (a disc on a gradient), at the model's resolution: no resize on either side."""
    os.makedirs(folder, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    for k in range(3):
        disc = ((xx - 0.3 - 0.2 * k) ** 2 + (yy - 0.5) ** 2) < 0.08
        img = np.stack([0.8 * disc + 0.2 * xx, 0.3 * yy + 0.1 * k, 0.5 * (1 - disc) * xx], -1)
        Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).save(os.path.join(folder, f"image-{k}.png"))


def text_encoder_gradients():
    tok = CLIPTokenizer.from_pretrained(MODEL, subfolder="tokenizer")
    te = CLIPTextModel.from_pretrained(MODEL, subfolder="text_encoder")
    ids = tok(["a photo of a red circle", "a blue square"], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
    g = torch.Generator("cpu").manual_seed(5)
    weights = torch.randn((ids.shape[0], ids.shape[1], te.config.hidden_size), generator=g)
    states = te(ids)[0]
    (states * weights).sum().backward()
    out = {"ids": ids.contiguous(), "weights": weights, "states": states.detach().contiguous()}
    for n, p in te.named_parameters():
        out[f"grad.text_encoder.{n}"] = p.grad.contiguous()
    save_file(out, os.path.join(OUT, "te-gradients.safetensors"))


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(MODEL, "unet", "config.json")) as f:
        sample = json.load(f)["sample_size"]
    with open(os.path.join(MODEL, "vae", "config.json")) as f:
        size = sample * 2 ** (len(json.load(f)["block_out_channels"]) - 1)
    images = os.path.join(OUT, "images")
    write_images(images, size)
    out = {"concept": CONCEPT, "cases": {}}
    for name, c in CASES.items():
        args = [a for t in TEMPLATES for a in ("--prompt", t.replace("{}", CONCEPT))]
        args += ["--zero-shot"] if c.get("zeroShot") else ["--images", images]
        args += ["--concept", CONCEPT]
        args += ["--te-params", c["teParams"], "--epochs", str(c["epochs"]), "--batch", str(c["batch"]), "--lr", str(c["lr"]),
                 "--seed", str(c["seed"]), "--threads", "1", "--out", os.path.join(OUT, f"{name}.safetensors")]
        r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fewshot_reference.py"), MODEL, *args], check=True, capture_output=True, text=True)
        result = json.loads(r.stdout.strip().splitlines()[-1])
        out["cases"][name] = {**c, "losses": result["losses"]}
    text_encoder_gradients()
    import diffusers
    import transformers
    out["versions"] = {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__}
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: v["losses"][-1] for k, v in out["cases"].items()}))


if __name__ == "__main__":
    main()
