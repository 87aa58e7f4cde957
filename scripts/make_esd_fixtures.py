#!/usr/bin/env python3
"""Reference deltas for Lethe's ESD tests: runs scripts/esd_reference.py (the reference loop on
PyTorch + diffusers) on the tiny-sd1 fixture model and stores each delta with its loss curve.
Run: node scripts/python.js scripts/make_esd_fixtures.py"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

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
# The same model with a DPM-Solver scheduler config that has no clip_sample (as the bundled model's
# had): the erasure's DDIM must not clip (CompVis' sampler never does). The test builds the same copy.
DPM_CONFIG = {"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "dpmsolver++", "beta_end": 0.012, "beta_schedule": "scaled_linear",
              "beta_start": 0.00085, "num_train_timesteps": 1000, "prediction_type": "epsilon", "solver_order": 2, "steps_offset": 1,
              "timestep_spacing": "linspace"}
ON_DPM_CONFIG = {"esd-x-dpm-config": ["--method", "esd-x", "--concept", "red circle", "--iterations", "5", "--ddim-steps", "10", "--lr", "1e-3",
                                      "--start-guidance", "6", "--seed", "8"]}
os.makedirs(OUT, exist_ok=True)
cases = {}
tmp = tempfile.mkdtemp()
dpm_model = os.path.join(tmp, "tiny-sd1-dpm")
shutil.copytree(MODEL, dpm_model)
with open(os.path.join(dpm_model, "scheduler", "scheduler_config.json"), "w") as f:
    json.dump(DPM_CONFIG, f, indent=2)
for name, args in [*RUNS.items(), *ON_DPM_CONFIG.items()]:
    delta = os.path.join(OUT, f"{name}.safetensors")
    model = dpm_model if name in ON_DPM_CONFIG else MODEL
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "esd_reference.py"), model, *args, "--threads", "1", "--out", delta],
                       check=True, capture_output=True, text=True)
    result = json.loads(r.stdout.strip().splitlines()[-1])
    cases[name] = {"args": args, "losses": result["losses"], **({"schedulerConfig": DPM_CONFIG} if name in ON_DPM_CONFIG else {})}
shutil.rmtree(tmp)
with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(json.dumps({k: len(v["losses"]) for k, v in cases.items()}))
