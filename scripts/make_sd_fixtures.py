#!/usr/bin/env python3
"""Make the reference fixtures for Lethe's native Stable Diffusion modules (docs/architecture.md, "Models" and "Files").

Writes, under test/fixtures/models/ (or --out):
  tiny-sd1/, tiny-sd2/                  two tiny random-weight models in the diffusers folder layout
                                        (safetensors only), SD 1.x-like and SD 2.x-like
  tiny-sd1-reference.safetensors, ...   what transformers/diffusers compute with them: tokens, text
                                        encoder states, UNet and VAE outputs, full txt2img runs

Run from the repository root:
  node scripts/python.js scripts/make_sd_fixtures.py [--out DIR] [--only tiny-sd1 ...] [--check]

Deterministic: fixed seeds, float32 on the CPU with one thread, deterministic algorithms, and the
safetensors headers written in a canonical order, so two runs on one machine give identical bytes.
--check recomputes everything into a temporary folder and compares it with the files in --out
byte for byte instead of writing.
"""
import argparse
import hashlib
import importlib.util
import json
import math
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "test", "fixtures", "models")
FORMAT = "lethe-sd-reference/1"

# The prompts whose tokens and text-encoder states are recorded: empty, ordinary, punctuation /
# case / digits / doubled spaces, non-ASCII (byte-level fallback; CLIPTokenizer without ftfy also
# splits CJK characters apart), and one longer than 77 tokens (truncated to 77 with the end token).
PROMPTS = [
    "",
    "a red circle",
    "A Striped  BLUE star, in the style of Van Gogh!!! (detailed) [high-quality]; 3 cats & 2 dogs? it's #1",
    "café naïve — 日本 ✨",
    " ".join(["a picture of a green heart and an outlined square in purple on a white background"] * 6),
]

TXT2IMG = {
    "prompt": "a red circle",
    "negative_prompt": "",
    "num_inference_steps": 6,
    "guidance_scale": 7.5,
    "height": 16,
    "width": 16,
    "num_images_per_prompt": 1,
    "eta": 0.0,
}

# The scheduler both models are saved with: Stable Diffusion 1.5's / 2.x's DDIM configuration.
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    timestep_spacing="leading",
)

MODELS = {
    "tiny-sd1": dict(
        seed=1,
        pad_token="<|endoftext|>",
        text=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=3, num_attention_heads=4, hidden_act="quick_gelu"),
        unet=dict(cross_attention_dim=32, attention_head_dim=8),
        prediction_type="epsilon",
    ),
    "tiny-sd2": dict(
        seed=2,
        pad_token="!",
        text=dict(hidden_size=48, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, hidden_act="gelu"),
        unet=dict(cross_attention_dim=48, attention_head_dim=(2, 4, 8), use_linear_projection=True, upcast_attention=True),
        prediction_type="v_prediction",
    ),
}

# Added to every parameter after the default initialisation (fixed seed), so that parameters the
# defaults leave at 0 or 1 (norm weights and biases, linear/conv biases) still matter in comparisons.
PERTURB_STD_MATRIX = 0.02  # weights with 2+ dimensions (added to kaiming/normal init)
PERTURB_STD_VECTOR = 0.1  # biases, norm weights, embeddings' 1-D params


def setup_determinism():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)


def versions():
    import diffusers
    import numpy
    import safetensors
    import transformers

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "ftfy": "installed" if importlib.util.find_spec("ftfy") else "not installed",
    }


def perturb_(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            std = PERTURB_STD_MATRIX if p.dim() >= 2 else PERTURB_STD_VECTOR
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return model


def make_tokenizer(tmp_dir, pad_token):
    from transformers import CLIPTokenizer

    vocab_dir = os.path.join(tmp_dir, "vocab")
    subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "make_clip_vocab.py"), vocab_dir, "--pad-token", pad_token],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return CLIPTokenizer.from_pretrained(vocab_dir)


def build_pipeline(spec, tmp_dir):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    seed = spec["seed"]
    tokenizer = make_tokenizer(tmp_dir, spec["pad_token"])

    torch.manual_seed(seed * 100 + 1)
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer.get_vocab()),
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **spec["text"],
    )
    text_encoder = perturb_(CLIPTextModel(text_config).eval(), seed * 100 + 11)

    torch.manual_seed(seed * 100 + 2)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 32, 64),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        norm_num_groups=32,
        **spec["unet"],
    )
    unet = perturb_(unet.eval(), seed * 100 + 12)

    torch.manual_seed(seed * 100 + 3)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,  # diffusers' default (real SD VAEs use 2); keeps the folder small
        latent_channels=4,
        norm_num_groups=32,
        sample_size=16,
    )
    vae = perturb_(vae.eval(), seed * 100 + 13)

    scheduler = DDIMScheduler(prediction_type=spec["prediction_type"], **SCHEDULER_CONFIG)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def canonical_safetensors(path):
    """Rewrite a safetensors header in a canonical order. safetensors' Rust writer keeps __metadata__
    in a hash map whose order changes from run to run; sorting it makes the bytes reproducible."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    if "__metadata__" in header:
        out["__metadata__"] = dict(sorted(header.pop("__metadata__").items()))
    out.update(sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0], kv[0])))
    text = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data[8 + n :])


@torch.no_grad()
def text_references(pipe):
    tok = pipe.tokenizer
    for p in PROMPTS[-1:]:
        n = len(tok(p).input_ids)
        assert n > 77, f"the long prompt has only {n} tokens"
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    te = pipe.text_encoder
    out = te(ids, output_hidden_states=True)
    penultimate = out.hidden_states[-2]
    return {
        "tokens.ids": ids.to(torch.int64),
        "text.last_hidden_state": out.last_hidden_state,
        "text.hidden_state_penultimate": penultimate,
        "text.clip_skip_1": te.text_model.final_layer_norm(penultimate),
    }


@torch.no_grad()
def unet_references(pipe, seed):
    g = torch.Generator().manual_seed(seed * 1000 + 21)
    c = pipe.unet.config.cross_attention_dim
    r = {
        "unet.in.sample": torch.randn(2, 4, 8, 8, generator=g),
        "unet.in.timestep": torch.tensor([999.0, 421.0], dtype=torch.float32),
        "unet.in.encoder_hidden_states": torch.randn(2, 77, c, generator=g),
        "unet.in2.sample": torch.randn(1, 4, 8, 12, generator=g),
        "unet.in2.timestep": torch.tensor([57.0], dtype=torch.float32),
        "unet.in2.encoder_hidden_states": torch.randn(1, 77, c, generator=g),
    }
    r["unet.out"] = pipe.unet(r["unet.in.sample"], r["unet.in.timestep"], r["unet.in.encoder_hidden_states"]).sample
    r["unet.out2"] = pipe.unet(r["unet.in2.sample"], r["unet.in2.timestep"], r["unet.in2.encoder_hidden_states"]).sample
    return r


@torch.no_grad()
def vae_references(pipe, seed):
    g = torch.Generator().manual_seed(seed * 1000 + 31)
    images = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    latents = torch.randn(2, 4, 8, 8, generator=g)
    dist = pipe.vae.encode(images).latent_dist
    return {
        "vae.in.images": images,
        "vae.encode.mean": dist.mean,
        "vae.encode.logvar": dist.logvar,
        "vae.in.latents": latents,
        "vae.decode.out": pipe.vae.decode(latents).sample,
    }


def json_safe(x):
    """Plain JSON (what JSON.parse reads): non-finite floats such as DPM-Solver's lambda_min_clipped
    = -inf become the strings "Infinity" / "-Infinity" / "NaN"."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in sorted(x.items())}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return x


SAMPLERS = {
    # name: (scheduler class name, extra config, negative prompt)
    "ddim": ("DDIMScheduler", {}, ""),
    "euler": ("EulerDiscreteScheduler", {}, ""),
    "dpmpp-2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}, ""),
    "ddim_neg": ("DDIMScheduler", {}, "blue"),
}


@torch.no_grad()
def txt2img_references(pipe, seed):
    import diffusers

    base_config = dict(pipe.scheduler.config)
    tensors, info = {}, {}
    for i, (name, (cls_name, extra, negative)) in enumerate(SAMPLERS.items()):
        cls = getattr(diffusers, cls_name)
        pipe.scheduler = cls.from_config(base_config, **extra)
        latents_in = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed * 1000 + 41 + i))
        args = dict(TXT2IMG, negative_prompt=negative)
        runs = {}
        for output_type in ("latent", "pt"):
            runs[output_type] = pipe(
                **args,
                latents=latents_in.clone(),
                output_type=output_type,
                generator=torch.Generator().manual_seed(0),
            ).images
        latents_out, images = runs["latent"], runs["pt"]
        # The image is the decode of those latents, as documented in the metadata.
        sf = pipe.vae.config.scaling_factor
        again = (pipe.vae.decode(latents_out / sf).sample / 2 + 0.5).clamp(0, 1)
        assert torch.equal(again, images), f"{name}: images differ from decode(latents_out / scaling_factor)"
        assert torch.isfinite(latents_out).all() and torch.isfinite(images).all()
        tensors[f"txt2img.{name}.latents_in"] = latents_in
        tensors[f"txt2img.{name}.latents_out"] = latents_out
        tensors[f"txt2img.{name}.images"] = images
        plan = cls.from_config(base_config, **extra)
        plan.set_timesteps(TXT2IMG["num_inference_steps"])
        info[name] = {
            "scheduler_class": cls_name,
            "scheduler_config": json_safe({k: v for k, v in pipe.scheduler.config.items() if k != "_use_default_values"}),
            "from_config_overrides": extra,
            "prompt": TXT2IMG["prompt"],
            "negative_prompt": negative,
            "timesteps": [int(t) for t in plan.timesteps],
            "init_noise_sigma": float(plan.init_noise_sigma),
        }
    pipe.scheduler = getattr(diffusers, "DDIMScheduler").from_config(base_config)
    return tensors, info


def references(pipe, name, spec):
    seed = spec["seed"]
    tensors = {}
    tensors.update(text_references(pipe))
    tensors.update(unet_references(pipe, seed))
    tensors.update(vae_references(pipe, seed))
    t2i, t2i_info = txt2img_references(pipe, seed)
    tensors.update(t2i)
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        want = torch.int64 if k == "tokens.ids" else torch.float32
        assert v.dtype == want, (k, v.dtype)
    metadata = {
        "format": FORMAT,
        "model": name,
        "model_folder": name + "/",
        "prompts": json.dumps(PROMPTS, ensure_ascii=False),
        "versions": json.dumps(versions(), sort_keys=True),
        "seed": str(seed),
        "weights_perturbation": json.dumps(
            {"matrix_std": PERTURB_STD_MATRIX, "vector_std": PERTURB_STD_VECTOR, "note": "N(0,std) added to every parameter after default init"}
        ),
        "text.convention": (
            "tokens.ids = tokenizer(prompts, padding='max_length', max_length=77, truncation=True); text encoder "
            "called on them without attention_mask (causal mask only). text.last_hidden_state includes "
            "final_layer_norm; text.hidden_state_penultimate = hidden_states[-2] (output of the second-to-last "
            "encoder layer, no final_layer_norm); text.clip_skip_1 = final_layer_norm(hidden_states[-2])."
        ),
        "unet.convention": (
            "unet(sample, timestep, encoder_hidden_states).sample; timesteps float32, one per batch item for "
            "unet.in; unet.in2.timestep has shape [1] and is broadcast over the batch (and the latent is 8x12, "
            "not square)."
        ),
        "vae.convention": (
            "vae.encode.mean / vae.encode.logvar = vae.encode(vae.in.images).latent_dist.mean / .logvar "
            "(logvar clamped to [-30, 20] by diffusers; no scaling_factor applied). vae.decode.out = "
            "vae.decode(vae.in.latents).sample: the latents are fed to post_quant_conv as they are (they are "
            "'already divided by scaling_factor'), and the output is raw (not clamped, not mapped to [0,1])."
        ),
        "scaling_factor": repr(float(pipe.vae.config.scaling_factor)),
        "txt2img": json.dumps(
            {
                "pipeline_class": type(pipe).__name__,
                **TXT2IMG,
                "runs": t2i_info,
                "convention": (
                    "latents_in is the pipeline's `latents` argument (unit normal; the pipeline multiplies it by "
                    "scheduler.init_noise_sigma). latents_out = pipe(..., output_type='latent').images. images = "
                    "pipe(..., output_type='pt').images = (vae.decode(latents_out / scaling_factor).sample / 2 + "
                    "0.5).clamp(0, 1), NCHW. Classifier-free guidance: uncond = negative prompt tokens."
                ),
            },
            sort_keys=True,
            ensure_ascii=False,
            allow_nan=False,
        ),
    }
    return tensors, metadata


def save_references(path, tensors, metadata):
    from safetensors.torch import save_file

    tmp = path + f".tmp-{os.getpid()}"
    save_file(tensors, tmp, metadata=metadata)
    canonical_safetensors(tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def folder_files(folder):
    out = []
    for dirpath, _, files in os.walk(folder):
        for f in files:
            out.append(os.path.relpath(os.path.join(dirpath, f), folder))
    return sorted(out)


def check_folder(folder):
    bad = [f for f in folder_files(folder) if f.endswith((".bin", ".ckpt", ".pt", ".pth", ".pkl"))]
    assert not bad, f"pickle files in {folder}: {bad}"


@torch.no_grad()
def verify_reload(folder, original, tensors):
    """Reload the saved folder with diffusers and check that it computes bit-identical outputs."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    for comp in ("text_encoder", "unet", "vae"):
        a, b = getattr(original, comp).state_dict(), getattr(pipe, comp).state_dict()
        assert a.keys() == b.keys(), comp
        for k in a:
            assert torch.equal(a[k], b[k]), f"{comp}.{k} changed on save/load"
    ids = pipe.tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    assert torch.equal(ids, tensors["tokens.ids"]), "reloaded tokenizer differs"
    got = pipe.text_encoder(ids).last_hidden_state
    assert torch.equal(got, tensors["text.last_hidden_state"]), "reloaded text encoder differs"
    got = pipe.unet(tensors["unet.in.sample"], tensors["unet.in.timestep"], tensors["unet.in.encoder_hidden_states"]).sample
    assert torch.equal(got, tensors["unet.out"]), "reloaded unet differs"
    got = pipe.vae.decode(tensors["vae.in.latents"]).sample
    assert torch.equal(got, tensors["vae.decode.out"]), "reloaded vae differs"
    got = pipe(
        **TXT2IMG, latents=tensors["txt2img.ddim.latents_in"].clone(), output_type="latent", generator=torch.Generator().manual_seed(0)
    ).images
    assert torch.equal(got, tensors["txt2img.ddim.latents_out"]), "reloaded pipeline differs"


def make_model(name, spec, out_dir):
    work = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=out_dir)
    try:
        pipe = build_pipeline(spec, work)
        pipe.set_progress_bar_config(disable=True)
        folder = os.path.join(work, name)
        pipe.save_pretrained(folder, safe_serialization=True)
        check_folder(folder)
        tensors, metadata = references(pipe, name, spec)
        verify_reload(folder, pipe, tensors)
        final = os.path.join(out_dir, name)
        old = final + f".old-{os.getpid()}"
        if os.path.exists(final):
            os.rename(final, old)
        os.rename(folder, final)
        shutil.rmtree(old, ignore_errors=True)
        save_references(os.path.join(out_dir, f"{name}-reference.safetensors"), tensors, metadata)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def digest_tree(root, names):
    out = {}
    for name in names:
        for rel in (f"{name}-reference.safetensors",) + tuple(os.path.join(name, f) for f in folder_files(os.path.join(root, name))):
            p = os.path.join(root, rel)
            with open(p, "rb") as f:
                out[rel] = (os.path.getsize(p), hashlib.sha256(f.read()).hexdigest())
    return out


def report(out_dir, names):
    for name in names:
        folder = os.path.join(out_dir, name)
        total = 0
        for rel in folder_files(folder):
            size = os.path.getsize(os.path.join(folder, rel))
            total += size
            print(f"  {name}/{rel}: {size} bytes")
        ref = os.path.join(out_dir, f"{name}-reference.safetensors")
        print(f"{name}/: {total} bytes; {os.path.basename(ref)}: {os.path.getsize(ref)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), default=sorted(MODELS))
    ap.add_argument("--check", action="store_true", help="regenerate into a temporary folder and compare with --out")
    args = ap.parse_args()
    setup_determinism()
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.set_verbosity_error()

    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    target = tempfile.mkdtemp(prefix=".tmp-check-", dir=out_dir) if args.check else out_dir
    try:
        for name in args.only:
            make_model(name, MODELS[name], target)
        if args.check:
            want, got = digest_tree(out_dir, args.only), digest_tree(target, args.only)
            diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            if diff:
                print("differs from " + out_dir + ":\n  " + "\n  ".join(diff))
                sys.exit(1)
            print(f"identical: {len(want)} files")
        else:
            report(out_dir, args.only)
    finally:
        if args.check:
            shutil.rmtree(target, ignore_errors=True)


if __name__ == "__main__":
    main()
