#!/usr/bin/env python3
"""Make the reference fixtures for Lethe's native AnimateDiff motion UNet (docs/architecture.md, "Models").

Writes, under test/fixtures/models/ (or --out):
  tiny-motion-sd1/, tiny-motion-sd2/    two tiny random-weight MotionAdapter folders (config.json +
                                        diffusion_pytorch_model.safetensors, diffusers layout) for the
                                        tiny-sd1 / tiny-sd2 UNets made by make_sd_fixtures.py
  tiny-animatediff-sd1/                 what AnimateDiffPipeline(tiny-sd1 + tiny-motion-sd1).save_pretrained
                                        writes, without its weights: model_index.json (naming the motion
                                        adapter) and unet/config.json (a UNetMotionModel). The saved
                                        unet's weights are exactly tiny-sd1's UNet tensors plus the
                                        adapter's under the same keys (checked here, tensor for tensor),
                                        so the tests assemble that folder from the two instead of
                                        keeping 9 MB of copies.
  tiny-motion-sd1-reference.safetensors, ...
                                        what diffusers' UNetMotionModel.from_unet2d(unet, adapter)
                                        computes from fixed inputs: latents [batch, channels, frames,
                                        h, w], per-sample timesteps, text states [batch * frames, 77, dim]
                                        (the layout AnimateDiffPipeline passes: prompt states repeated
                                        per frame)

The two adapters differ where configs can: sd1 has one motion transformer layer and a motion mid
block; sd2 has per-block head counts, two transformer layers per motion module and no mid block.

Run from the repository root (after make_sd_fixtures.py):
  node scripts/python.js scripts/make_motion_fixtures.py [--out DIR]
Deterministic: fixed seeds, float32 on the CPU with one thread; headers in canonical order.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_sd_fixtures import DEFAULT_OUT, canonical_safetensors, save_references, setup_determinism, versions  # noqa: E402

FORMAT = "lethe-motion-reference/1"

ADAPTERS = {
    "tiny-motion-sd1": dict(
        unet="tiny-sd1",
        seed=11,
        config=dict(motion_num_attention_heads=4, motion_transformer_layers_per_block=1, use_motion_mid_block=True, motion_max_seq_length=32),
    ),
    "tiny-motion-sd2": dict(
        unet="tiny-sd2",
        seed=12,
        config=dict(motion_num_attention_heads=[2, 4, 8], motion_transformer_layers_per_block=2, use_motion_mid_block=False, motion_max_seq_length=16),
    ),
}


# AnimateDiffPipeline's text to video on tiny-sd1 + tiny-motion-sd1 (its scheduler: tiny-sd1's DDIM).
T2V = dict(prompt="a red circle", negative_prompt="", num_inference_steps=6, guidance_scale=7.5, height=16, width=16, num_frames=4)


# The four samplers (DDPM draws its per-step noise from the pipeline's generator, seed 0).
T2V_SAMPLERS = [
    ("ddim", "DDIMScheduler", {}),
    ("euler", "EulerDiscreteScheduler", {}),
    ("dpmpp-2m", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    ("ddpm", "DDPMScheduler", {}),
]


def make_adapter(name, spec, out_dir):
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(os.path.join(out_dir, spec["unet"], "unet"))
    uc = unet.config
    adapter = MotionAdapter(
        block_out_channels=tuple(uc.block_out_channels),
        motion_layers_per_block=uc.layers_per_block,
        motion_norm_num_groups=uc.norm_num_groups,
        **spec["config"],
    )
    # diffusers zero-initialises nothing here, but random init at its scale makes the temporal
    # layers nearly an identity: redraw every weight so that they matter to the output.
    g = torch.Generator().manual_seed(spec["seed"])
    with torch.no_grad():
        for pname, p in adapter.named_parameters():
            if pname.endswith(".weight") and p.dim() == 1:  # norms
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 / max(1, p.shape[-1]) ** 0.5 if p.dim() >= 2 else 0.05))
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    adapter.save_config(folder)
    # Written through safetensors directly (canonical header), the same tensors save_pretrained writes.
    weights = os.path.join(folder, "diffusion_pytorch_model.safetensors")
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, weights + ".tmp", metadata={"format": "pt"})
    canonical_safetensors(weights + ".tmp")
    os.chmod(weights + ".tmp", 0o644)
    os.replace(weights + ".tmp", weights)
    reloaded = MotionAdapter.from_pretrained(folder)

    model = UNetMotionModel.from_unet2d(unet, reloaded).eval()
    g = torch.Generator().manual_seed(spec["seed"] * 1000 + 7)
    c = uc.cross_attention_dim
    r = {}
    cases = [("in", 2, 3, 8, 8, [999.0, 421.0]), ("in2", 1, 5, 8, 12, [57.0])]
    with torch.no_grad():
        for key, b, f, h, w, ts in cases:
            r[f"motion.{key}.sample"] = torch.randn(b, 4, f, h, w, generator=g)
            r[f"motion.{key}.timestep"] = torch.tensor(ts, dtype=torch.float32)
            states = torch.randn(b, 77, c, generator=g)
            r[f"motion.{key}.encoder_hidden_states"] = states
            out = model(r[f"motion.{key}.sample"], r[f"motion.{key}.timestep"], states.repeat_interleave(f, dim=0)).sample
            r[f"motion.{key}.out"] = out.contiguous()
    meta = {"format": FORMAT, "unet": spec["unet"], "adapter": name, "versions": json.dumps(versions(), sort_keys=True)}
    save_references(os.path.join(out_dir, f"{name}-reference.safetensors"), r, meta)
    print(f"{name}: {sum(p.numel() for p in reloaded.parameters())} adapter parameters; outputs {[tuple(r[k].shape) for k in r if k.endswith('.out')]}")


def save_pipeline_layout(out_dir):
    """tiny-animatediff-sd1/: a saved AnimateDiffPipeline's model_index.json and unet/config.json."""
    import shutil
    import tempfile

    from diffusers import AnimateDiffPipeline, MotionAdapter, StableDiffusionPipeline
    from safetensors.torch import load_file

    base = StableDiffusionPipeline.from_pretrained(os.path.join(out_dir, "tiny-sd1"), safety_checker=None, requires_safety_checker=False)
    adapter = MotionAdapter.from_pretrained(os.path.join(out_dir, "tiny-motion-sd1"))
    pipe = AnimateDiffPipeline(vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=base.unet, motion_adapter=adapter, scheduler=base.scheduler)
    pipe.set_progress_bar_config(disable=True)
    tmp = tempfile.mkdtemp(prefix="lethe-animatediff-")
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
        saved = load_file(os.path.join(tmp, "unet", "diffusion_pytorch_model.safetensors"))
        parts = {**load_file(os.path.join(out_dir, "tiny-sd1", "unet", "diffusion_pytorch_model.safetensors")),
                 **load_file(os.path.join(out_dir, "tiny-motion-sd1", "diffusion_pytorch_model.safetensors"))}
        assert set(saved) == set(parts), f"saved UNetMotionModel keys differ: {sorted(set(saved) ^ set(parts))[:5]}"
        assert all(torch.equal(saved[k], parts[k]) for k in saved), "a saved UNetMotionModel tensor differs from its UNet / adapter source"
        dest = os.path.join(out_dir, "tiny-animatediff-sd1")
        os.makedirs(os.path.join(dest, "unet"), exist_ok=True)
        shutil.copyfile(os.path.join(tmp, "model_index.json"), os.path.join(dest, "model_index.json"))
        shutil.copyfile(os.path.join(tmp, "unet", "config.json"), os.path.join(dest, "unet", "config.json"))
        print(f"tiny-animatediff-sd1: {len(saved)} saved unet tensors = tiny-sd1 unet + tiny-motion-sd1 (checked)")
        # Text to video from fixed latents with each sampler: the final latents and the decoded frames.
        import diffusers

        base_config = dict(pipe.scheduler.config)
        r, info = {}, {}
        for i, (name, cls_name, extra) in enumerate(T2V_SAMPLERS):
            pipe.scheduler = getattr(diffusers, cls_name).from_config(base_config, **extra)
            latents_in = torch.randn(1, 4, T2V["num_frames"], 8, 8, generator=torch.Generator().manual_seed(4242 + i))
            runs = {t: pipe(**T2V, latents=latents_in.clone(), output_type=t, generator=torch.Generator().manual_seed(0)).frames for t in ("latent", "pt")}
            assert torch.isfinite(runs["latent"]).all() and torch.isfinite(runs["pt"]).all()
            r[f"t2v.{name}.latents_in"] = latents_in
            r[f"t2v.{name}.latents_out"] = runs["latent"].contiguous()
            r[f"t2v.{name}.frames"] = runs["pt"].contiguous()
            info[name] = {"scheduler_class": cls_name, "from_config_overrides": extra}
            print(f"t2v {name}: latents {tuple(runs['latent'].shape)}, frames {tuple(runs['pt'].shape)}")
        meta = {"format": FORMAT, "t2v": json.dumps(T2V, sort_keys=True), "samplers": json.dumps(info, sort_keys=True), "versions": json.dumps(versions(), sort_keys=True)}
        save_references(os.path.join(out_dir, "tiny-animatediff-sd1-reference.safetensors"), r, meta)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    setup_determinism()
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()
    for name, spec in ADAPTERS.items():
        make_adapter(name, spec, os.path.abspath(args.out))
    save_pipeline_layout(os.path.abspath(args.out))


if __name__ == "__main__":
    main()
