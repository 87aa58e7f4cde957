"""Reference sampling runs of diffusers' schedulers, for test/schedulers.test.ts.

    node scripts/python.js scripts/make_scheduler_fixtures.py [--out test/fixtures/schedulers]

For each scheduler config below and each sampler (DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler,
DPMSolverMultistepScheduler, all built with `from_config(config)` exactly like
`XScheduler.from_config(pipe.scheduler.config)`), runs the StableDiffusionPipeline denoising loop on a
small float64 latent with a deterministic fake model

    out = 0.3 * tanh(xin) + 0.01 * t / 1000        (t = the timestep diffusers feeds the UNet)

and records the timesteps, the model inputs of every step, the random noise the scheduler drew (DDPM,
DDIM with eta > 0) and the final sample. Arrays are stored as base64 little-endian float64 ("f64:...")
or float32 ("f32:...") to keep the files small and exact.

Files written:
  <config>.json    one per config: the raw config, and the runs
  schedules.json   betas and alphas_cumprod of every beta schedule (DDIMScheduler's tables)
  timesteps.json   set_timesteps() of every sampler x spacing for many step counts
"""
import argparse
import base64
import json
import os
import sys

import numpy as np
import torch

import diffusers
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
import diffusers.schedulers.scheduling_ddpm as ddpm_module

assert diffusers.__version__ == "0.35.2", f"expected diffusers 0.35.2, got {diffusers.__version__}"

SAMPLERS = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "euler": EulerDiscreteScheduler,
    "dpmpp-2m": DPMSolverMultistepScheduler,
}

# runwayml / stable-diffusion-v1-5 scheduler/scheduler_config.json, verbatim (no timestep_spacing:
# every scheduler then uses its own default spacing, as diffusers does).
SD15 = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
# stabilityai / stable-diffusion-2-1 scheduler/scheduler_config.json, verbatim.
SD2V = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.8.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

CONFIGS = {
    # name: (config, step counts, extra runs [(sampler, steps, eta)])
    "sd15": (SD15, [1, 5, 20, 50], [("ddim", 5, 0.7), ("ddim", 20, 1.0)]),
    "sd15-leading": ({**SD15, "timestep_spacing": "leading"}, [1, 5, 15], []),
    "sd15-trailing": ({**SD15, "timestep_spacing": "trailing"}, [1, 5, 15], []),
    "sd15-linspace": ({**SD15, "timestep_spacing": "linspace"}, [2, 5, 15], []),
    "sd2-v": (SD2V, [1, 2, 5, 20], [("ddim", 5, 0.5), ("dpmpp-2m", 50, 0.0)]),
    "sd2-v-zsnr-trailing": (
        {**SD2V, "timestep_spacing": "trailing", "rescale_betas_zero_snr": True},
        [1, 5, 15],
        [],
    ),
    # DDPMScheduler defaults (linear betas, clip_sample true, fixed_small), as saved by diffusers.
    "linear-clip": (
        {
            "_class_name": "DDPMScheduler",
            "_diffusers_version": "0.35.2",
            "beta_start": 0.0001,
            "beta_end": 0.02,
            "beta_schedule": "linear",
            "num_train_timesteps": 1000,
            "clip_sample": True,
            "clip_sample_range": 1.0,
            "variance_type": "fixed_small",
            "prediction_type": "epsilon",
            "timestep_spacing": "leading",
            "steps_offset": 0,
        },
        [1, 2, 5, 15],
        [("ddim", 5, 1.0)],
    ),
    "linear-fixed-large": (
        {
            "_class_name": "DDPMScheduler",
            "beta_start": 0.0001,
            "beta_end": 0.02,
            "beta_schedule": "linear",
            "num_train_timesteps": 1000,
            "clip_sample": False,
            "variance_type": "fixed_large",
            "timestep_spacing": "linspace",
        },
        [2, 5],
        [],
    ),
    "cosine-trailing": (
        {
            "_class_name": "DDIMScheduler",
            "beta_schedule": "squaredcos_cap_v2",
            "num_train_timesteps": 1000,
            "clip_sample": False,
            "set_alpha_to_one": True,
            "prediction_type": "epsilon",
            "timestep_spacing": "trailing",
        },
        [1, 2, 5, 15],
        [],
    ),
    # A DPMSolverMultistepScheduler config as diffusers saves it (lambda_min_clipped -inf is written as
    # the non-JSON token -Infinity), with a few non-default solver options.
    "cosine-dpm-options": (
        {
            "_class_name": "DPMSolverMultistepScheduler",
            "_diffusers_version": "0.35.2",
            "beta_schedule": "squaredcos_cap_v2",
            "num_train_timesteps": 1000,
            "prediction_type": "v_prediction",
            "lambda_min_clipped": -5.1,
            "solver_type": "heun",
            "final_sigmas_type": "sigma_min",
            "timestep_spacing": "linspace",
            "lower_order_final": True,
            "euler_at_final": False,
            "solver_order": 2,
            "algorithm_type": "dpmsolver++",
            "variance_type": None,
            "use_karras_sigmas": False,
        },
        [5, 20],
        [],
    ),
    "sd15-dpm-saved": (
        {
            **SD15,
            "_class_name": "DPMSolverMultistepScheduler",
            "algorithm_type": "dpmsolver++",
            "solver_order": 2,
            "solver_type": "midpoint",
            "lower_order_final": True,
            "lambda_min_clipped": float("-inf"),
            "final_sigmas_type": "zero",
            "timestep_spacing": "leading",
        },
        [5, 15],
        [],
    ),
}

SHAPE = (1, 4, 4, 4)


def b64(arr, dtype):
    a = np.ascontiguousarray(np.asarray(arr, dtype=dtype).reshape(-1))
    return ("f64:" if dtype == np.float64 else "f32:") + base64.b64encode(a.astype("<" + a.dtype.str[1:]).tobytes()).decode()


def fake_model(xin, t):
    return 0.3 * torch.tanh(xin) + 0.01 * float(t) / 1000


class NoiseTap:
    """Replaces the scheduler module's randn_tensor with draws from our own generator, and records them."""

    def __init__(self, seed):
        self.gen = torch.Generator().manual_seed(seed)
        self.step = None
        self.draws = {}

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        n = torch.randn(shape, generator=self.gen, dtype=dtype)
        assert self.step not in self.draws
        self.draws[self.step] = n.clone()
        return n


def run(cls, config, steps, eta, seed):
    sched = cls.from_config(config)
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    init_noise_sigma = float(sched.init_noise_sigma)
    x = latents * sched.init_noise_sigma
    tap = NoiseTap(seed + 1)
    ddim_noise = torch.Generator().manual_seed(seed + 2)
    old = ddpm_module.randn_tensor
    ddpm_module.randn_tensor = tap
    inputs, timesteps = [], []
    try:
        for i, t in enumerate(sched.timesteps):
            tap.step = i
            xin = sched.scale_model_input(x, t)
            inputs.append(xin.clone())
            timesteps.append(t.item())
            out = fake_model(xin, t)
            kwargs = {}
            if cls is DDIMScheduler:
                kwargs["eta"] = eta
                if eta > 0:
                    n = torch.randn(SHAPE, generator=ddim_noise, dtype=torch.float64)
                    tap.draws[i] = n.clone()
                    kwargs["variance_noise"] = n
            x = sched.step(out, t, x, **kwargs).prev_sample
    finally:
        ddpm_module.randn_tensor = old
    assert torch.isfinite(x).all(), f"{cls.__name__} produced non-finite values"
    rec = {
        "steps": steps,
        "timesteps": timesteps,
        "initNoiseSigma": init_noise_sigma,
        "latents": b64(latents.numpy(), np.float64),
        "modelInputs": b64(torch.stack(inputs).numpy(), np.float32),
        "final": b64(x.numpy(), np.float64),
    }
    if eta:
        rec["eta"] = eta
    if tap.draws:
        idx = sorted(tap.draws)
        rec["noiseSteps"] = idx
        rec["noise"] = b64(torch.stack([tap.draws[i] for i in idx]).numpy(), np.float64)
    if hasattr(sched, "sigmas") and cls in (EulerDiscreteScheduler, DPMSolverMultistepScheduler):
        rec["sigmas"] = b64(sched.sigmas.numpy(), np.float32)
    return rec


def json_dump(obj, path):
    # allow_nan: diffusers itself writes -Infinity for lambda_min_clipped; the TS reader must cope.
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"), allow_nan=True)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "schedulers"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    seed = 1234
    for name, (config, step_counts, extra) in CONFIGS.items():
        runs = []
        todo = [(s, n, 0.0) for s in SAMPLERS for n in step_counts] + list(extra)
        for sampler, steps, eta in todo:
            rec = run(SAMPLERS[sampler], config, steps, eta, seed)
            rec["sampler"] = sampler
            runs.append(rec)
            seed += 7
        json_dump({"diffusers": diffusers.__version__, "torch": torch.__version__, "config": config, "runs": runs},
                  os.path.join(args.out, f"{name}.json"))
        print(f"{name}: {len(runs)} runs")

    # beta schedules: DDIMScheduler's betas / alphas_cumprod (float32 torch tensors)
    schedules = {}
    for key, cfg in {
        "scaled_linear": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        "linear": {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02},
        "squaredcos_cap_v2": {"beta_schedule": "squaredcos_cap_v2"},
        "scaled_linear_zsnr": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                               "rescale_betas_zero_snr": True},
        "linear_500": {"beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02, "num_train_timesteps": 500},
        "trained": {"trained_betas": np.linspace(0.001, 0.03, 1000).tolist()},
    }.items():
        s = DDIMScheduler.from_config(cfg)
        schedules[key] = {
            "config": cfg if key != "trained" else {"trained_betas": "linspace(0.001, 0.03, 1000)"},
            "betas": b64(s.betas.numpy(), np.float32),
            "alphasCumprod": b64(s.alphas_cumprod.numpy(), np.float32),
        }
    json_dump(schedules, os.path.join(args.out, "schedules.json"))

    # set_timesteps() for many step counts: every sampler x spacing, with steps_offset 1 (SD 1.x)
    counts = list(range(1, 21)) + [25, 33, 50, 61, 64, 77, 100, 101, 103, 333]
    table = {}
    for spacing in ["leading", "trailing", "linspace"]:
        cfg = {**SD15, "timestep_spacing": spacing}
        for sampler, cls in SAMPLERS.items():
            rows = {}
            for n in counts:
                s = cls.from_config(cfg)
                try:
                    s.set_timesteps(n)
                    rows[str(n)] = [float(v) if sampler == "euler" else int(v) for v in s.timesteps.tolist()]
                except Exception as e:  # recorded so the TS side can be checked to refuse it too
                    rows[str(n)] = f"error: {type(e).__name__}"
            table[f"{sampler}/{spacing}"] = rows
    json_dump({"config": SD15, "counts": counts, "timesteps": table}, os.path.join(args.out, "timesteps.json"))
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    sys.exit(main())
