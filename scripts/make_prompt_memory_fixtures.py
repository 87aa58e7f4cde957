#!/usr/bin/env python3
"""Reference deltas for Lethe's prompt-memory tests: runs scripts/prompt_memory_reference.py on the
tiny-sd1 fixture model and stores each delta with its loss curve; the continual case starts from
the first case's delta.
Run: node scripts/python.js scripts/make_prompt_memory_fixtures.py"""
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "test", "fixtures", "prompt-memory")
MODEL = os.path.join(ROOT, "test", "fixtures", "models", "tiny-sd1")
COMMON = ["--ddim-steps", "10", "--lr", "1e-3", "--prompt-lr", "1e-2", "--prompt-tokens", "3"]
RUNS = {
    "alternate": ["--concept", "red circle", "--iterations", "4", "--transfer-iterations", "4", "--placement", "mid_block.*,up_blocks.1.*", "--seed", "3"],
    "preserve-uneven": ["--concept", "red circle, blue", "--iterations", "5", "--transfer-iterations", "2", "--placement", "*",
                        "--preserve", "", "--preserve", "blue star", "--preserve-weight", "2", "--seed", "5"],
    "erasure-trains-prompt": ["--concept", "blue star", "--iterations", "4", "--transfer-iterations", "1", "--placement", "*", "--erasure-trains-prompt", "--seed", "8"],
    "continual": ["--concept", "green square", "--iterations", "3", "--transfer-iterations", "3", "--placement", "mid_block.*,up_blocks.1.*", "--seed", "6",
                  "--start", os.path.join(OUT, "alternate.safetensors")],
}
os.makedirs(OUT, exist_ok=True)
cases = {}
for name, args in RUNS.items():
    delta = os.path.join(OUT, f"{name}.safetensors")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "prompt_memory_reference.py"), MODEL, *COMMON, *args, "--threads", "1", "--out", delta],
                       check=True, capture_output=True, text=True)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    cases[name] = {"args": [*COMMON, *[x if not x.startswith(OUT) else "alternate" for x in args]], "losses": result["losses"]}
versions = subprocess.run([sys.executable, "-c", "import torch, diffusers, transformers; print(torch.__version__, diffusers.__version__, transformers.__version__)"],
                          check=True, capture_output=True, text=True).stdout.split()
with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump({"versions": dict(zip(["torch", "diffusers", "transformers"], versions)), "cases": cases}, f, indent=1)
print(json.dumps({k: len(v["losses"]) for k, v in cases.items()}))
