#!/usr/bin/env python3
"""Reference deltas for Lethe's DoCo tests: runs scripts/doco_reference.py (the authors' training
step on PyTorch + diffusers) on the tiny-sd1 fixture model with Concept Ablation's fixture anchors
(test/fixtures/ca/anchors.safetensors: the pairs and anchor settings of make_ca_fixtures.py, seed
11, which Lethe regenerates identically from the same settings), with and without gradient surgery,
for the xattn and embedding parameter sets, and stores each delta with its loss terms.
Run: node scripts/python.js scripts/make_doco_fixtures.py"""
import json
import os
import subprocess
import sys

import diffusers
import torch
import transformers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "test", "fixtures", "doco")
MODEL = os.path.join(ROOT, "test", "fixtures", "models", "tiny-sd1")
ANCHORS = os.path.join(ROOT, "test", "fixtures", "ca", "anchors.safetensors")
# The pairs Lethe builds for a model outside the shapes world (src/erase/methods/ca.ts, OBJECT_TEMPLATES).
TEMPLATES = ["{}", "a photo of {}", "a picture of {}", "an image of {}", "a painting of {}", "a drawing of {}", "a close-up photo of {}", "a rendering of {}"]
CONCEPT, ANCHOR = "red circle", "blue square"
# The anchors' settings (make_ca_fixtures.py's COMMON and its seed for the saved anchors).
COMMON = {"anchorImages": 6, "anchorSteps": 4, "anchorGuidance": 6, "seed": 11, "iterations": 6, "batch": 2, "warmup": 1, "dLr": 1e-3}
CASES = {
    "doco-xattn-surgery": {"params": "xattn", "lr": 1e-3, "surgery": True, "surgeryLambda": 1.0},
    "doco-xattn-nosurgery": {"params": "xattn", "lr": 1e-3, "surgery": False, "surgeryLambda": 1.0},
    "doco-embedding-surgery": {"params": "embedding", "lr": 1e-2, "surgery": True, "surgeryLambda": 2.0},
}
os.makedirs(OUT, exist_ok=True)
out = {"concept": CONCEPT, "anchor": ANCHOR, "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__}, "cases": {}}
for name, case in CASES.items():
    c = {**COMMON, **case}
    args = [a for t in TEMPLATES for a in ("--target-prompt", t.replace("{}", CONCEPT))]
    args += [a for t in TEMPLATES for a in ("--anchor-prompt", t.replace("{}", ANCHOR))]
    args += ["--anchors", ANCHORS, "--params", c["params"], "--iterations", str(c["iterations"]), "--lr", str(c["lr"]), "--batch", str(c["batch"]),
             "--seed", str(c["seed"]), "--d-lr", str(c["dLr"]), "--warmup", str(c["warmup"]), "--surgery-lambda", str(c["surgeryLambda"]),
             "--threads", "1", "--out", os.path.join(OUT, f"{name}.safetensors")]
    if not c["surgery"]:
        args.append("--no-surgery")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "doco_reference.py"), MODEL, *args], check=True, capture_output=True, text=True)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    out["cases"][name] = {**c, "terms": result["terms"]}
with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(out, f, indent=1)
print(json.dumps({k: {t: v[-1] for t, v in c["terms"].items()} for k, c in out["cases"].items()}))
