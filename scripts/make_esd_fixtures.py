#!/usr/bin/env python3
"""Reference deltas for Lethe's ESD tests: runs scripts/esd_reference.py (the reference loop on
PyTorch + diffusers) on the tiny-sd1 fixture model and stores each delta with its loss curve.
Run: node scripts/python.js scripts/make_esd_fixtures.py"""
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "test", "fixtures", "esd")
MODEL = os.path.join(ROOT, "test", "fixtures", "models", "tiny-sd1")
RUNS = {
    "esd-x": ["--method", "esd-x", "--concept", "red circle, blue", "--iterations", "6", "--ddim-steps", "10", "--lr", "1e-3", "--seed", "3"],
    "esd-x-strict-preserve": ["--method", "esd-x-strict", "--concept", "red circle", "--preserve", "", "--preserve", "blue star", "--preserve-weight", "2",
                              "--iterations", "6", "--ddim-steps", "10", "--lr", "1e-3", "--seed", "4"],
    "esd-x-strict-projection": ["--method", "esd-x-strict", "--concept", "red circle", "--preserve", "", "--preserve", "blue star", "--projection-keep", "a green square",
                                "--preserve-weight", "1.5", "--preserve-projection", "1", "--iterations", "6", "--ddim-steps", "10", "--lr", "1e-3", "--seed", "6"],
    "esd-x-strict-memory": ["--method", "esd-x-strict", "--concept", "red circle", "--memory-tokens", "3", "--memory-layers", "mid_block.*,up_blocks.1.*",
                            "--iterations", "6", "--ddim-steps", "10", "--lr", "1e-3", "--seed", "7"],
    "esd-self": ["--method", "esd-self", "--concept", "star", "--iterations", "4", "--ddim-steps", "8", "--lr", "1e-4", "--eta", "2", "--start-guidance", "5", "--seed", "5"],
}
os.makedirs(OUT, exist_ok=True)
cases = {}
for name, args in RUNS.items():
    delta = os.path.join(OUT, f"{name}.safetensors")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "esd_reference.py"), MODEL, *args, "--threads", "1", "--out", delta],
                       check=True, capture_output=True, text=True)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    cases[name] = {"args": args, "losses": result["losses"]}
with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(json.dumps({k: len(v["losses"]) for k, v in cases.items()}))
