"""Train the bundled text-to-video model from scratch on the synthetic world.

    python scripts/train_demo_model.py                       # ~85 min on 2 CPU cores
    python scripts/train_demo_model.py --max-minutes 5       # a quick smoke run

Checkpoints go to --run-dir every --ckpt-every steps (written atomically); running the
same command again resumes from the last one. The EMA weights are exported as a
diffusers-style folder (--out, default models/demo-t2v) at every checkpoint and at the end.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import DDIMScheduler, DDPMScheduler  # noqa: E402

from samg_video.demo import world  # noqa: E402
from samg_video.demo.model import (TEMPORAL_KINDS, TinyVideoUNet, build_text_encoder, build_tokenizer,  # noqa: E402
                                   frame_correlated_noise, motion_word_velocities)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="models/demo-t2v")
    p.add_argument("--run-dir", default="runs/demo-train")
    p.add_argument("--steps", type=int, default=3500, help="planned steps (sets the LR schedule)")
    p.add_argument("--max-minutes", type=float, default=85.0, help="stop (and export) after this long")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--pool", type=int, default=12000, help="number of pre-rendered training clips")
    p.add_argument("--uncond-prob", type=float, default=0.1, help="prompt dropout for CFG")
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temporal", choices=list(TEMPORAL_KINDS), default="conv1d",
                   help="temporal convs of the U-Net blocks (see TinyVideoUNet); the shipped model: conv1d")
    p.add_argument("--space-time-attention", action="store_true",
                   help="add a self-attention over all (frame, y, x) cells at 8x8 (tried; see the model card)")
    p.add_argument("--frame-embedding", action="store_true", help="add a frame-index embedding (tried; see the model card)")
    p.add_argument("--freeze-text-encoder", action="store_true",
                   help="keep the text encoder at its seeded random init (trained jointly, Adam pulls the motion "
                        "words' embeddings together; see the model card)")
    p.add_argument("--joint-cond", action="store_true",
                   help="mix time, text and frame conditioning through an MLP before FiLM (see TinyVideoUNet)")
    p.add_argument("--temporal-attention", action="store_true",
                   help="add self-attention along frames at every cell of both levels (see TinyVideoUNet)")
    p.add_argument("--spatial-attention", action="store_true",
                   help="add a self-attention over the 8x8 cells of each frame (global context per frame: against "
                        "duplicated objects, see the model card)")
    p.add_argument("--motion-align", action="store_true",
                   help="run the temporal convs / attention in the frame moving at a velocity read from the prompt "
                        "(see TinyVideoUNet; add --velocity-loss: from the diffusion loss alone the velocity stays at 0)")
    p.add_argument("--velocity-loss", type=float, default=0.0,
                   help="weight of an auxiliary loss that teaches the motion_align velocity head the motion measured "
                        "in each single-object training clip (its foreground centroid's slope); 0 = diffusion loss only")
    p.add_argument("--velocity-detach", action="store_true",
                   help="the diffusion loss sees the head's velocity as a constant, so only --velocity-loss trains "
                        "the head (otherwise the diffusion gradient holds it 0.2-0.4 px/frame off the clips' motion)")
    p.add_argument("--two-object-prob", type=float, default=0.4, help="share of two-object clips in the pool")
    p.add_argument("--noise-frame-share", type=float, default=0.0,
                   help="share of the noise variance common to all frames (PYoCo mixed noise; 0 = i.i.d.)")
    p.add_argument("--timestep-shift", type=float, default=1.0,
                   help="sample timesteps t = 999 s u / (1 + (s - 1) u), u ~ U(0, 1) (SD3's shift); s > 1 trains "
                        "more at high noise, where a clip's layout and motion are decided (1 = uniform)")
    p.add_argument("--weighting", choices=["v", "min-snr"], default="v",
                   help="loss weight per timestep: plain v-MSE (x0 weight snr + 1, sharp at low noise) or min-SNR-5")
    args = p.parse_args(argv)
    if args.velocity_detach and args.velocity_loss <= 0:
        p.error("--velocity-detach leaves the velocity head to --velocity-loss alone; give --velocity-loss > 0.")
    if args.velocity_loss > 0 and not args.motion_align:
        p.error("--velocity-loss trains the velocity head of --motion-align; add --motion-align or drop it.")
    return args


def render_pool(n: int, seed: int, path: Path, two_object_prob: float = 0.4) -> tuple[np.ndarray, list[str]]:
    """n random scenes rendered once as uint8 (n, F, H, W, 3), cached at `path`."""
    if path.is_file():
        data = np.load(path, allow_pickle=False)
        return data["clips"], list(data["prompts"])
    rng = np.random.default_rng(seed)
    clips, prompts = [], []
    for _ in tqdm(range(n), desc="rendering training clips"):
        scene = world.random_scene(rng, two_object_prob)
        clips.append((world.render(scene).numpy() * 255).round().astype(np.uint8))
        prompts.append(world.prompt_of(scene))
    clips = np.stack(clips)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, clips=clips, prompts=np.array(prompts))
    os.replace(tmp, path)
    return clips, prompts


def sample_timesteps(rng: np.random.Generator, n: int, shift: float = 1.0) -> np.ndarray:
    """n training timesteps in [0, 999]: uniform for shift 1 (the same draws as before),
    else t = 999 s u / (1 + (s - 1) u) with u ~ U(0, 1), which moves mass to high noise for s > 1."""
    if shift == 1.0:
        return rng.integers(0, 1000, n)
    u = rng.random(n)
    return np.rint(999 * shift * u / (1 + (shift - 1) * u)).astype(np.int64)


def measured_velocity(clips: np.ndarray) -> np.ndarray:
    """Velocity of each clip's foreground centroid, (N, F, H, W, 3) uint8 -> (N, 2) as (vx, vy) px/frame.

    Least-squares slope over frames of the centroid of the pixels whose brightest channel
    exceeds half the range: the clip's motion, measured from the pixels (for a two-object
    clip, a blend of both motions).
    """
    fg = (clips.max(-1) > 127).astype(np.float64)  # N F H W
    mass = fg.sum((2, 3)).clip(min=1)
    ys, xs = np.arange(clips.shape[2]) + 0.5, np.arange(clips.shape[3]) + 0.5
    cx = (fg.sum(2) * xs).sum(-1) / mass  # N F
    cy = (fg.sum(3) * ys).sum(-1) / mass
    t = np.arange(clips.shape[1]) - (clips.shape[1] - 1) / 2
    return np.stack([(cx * t).sum(1), (cy * t).sum(1)], axis=1) / (t * t).sum()


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - decay)


def save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export(unet, text_encoder, tokenizer, train_sched, out: Path, meta: dict) -> None:
    """Write the pipeline folder (safetensors) that `load_pipeline` reads."""
    out.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
    tokenizer.save_pretrained(out / "tokenizer")
    DDIMScheduler.from_config(train_sched.config, clip_sample=False, set_alpha_to_one=False,
                              steps_offset=1, timestep_spacing="leading").save_pretrained(out / "scheduler")
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    clips, prompts = render_pool(args.pool, args.seed, run / "pool.npz", args.two_object_prob)
    measured = torch.from_numpy(measured_velocity(clips)).float()
    single = torch.tensor([len(world.parse_prompt(p)) == 1 for p in prompts])
    tokenizer = build_tokenizer()
    ids = tokenizer(prompts + [""], padding="max_length", max_length=tokenizer.model_max_length,
                    return_tensors="pt")
    unet = TinyVideoUNet(temporal=args.temporal, frame_embedding=args.frame_embedding,
                         space_time_attention=args.space_time_attention,
                         temporal_attention=args.temporal_attention, noise_frame_share=args.noise_frame_share,
                         joint_cond=args.joint_cond, motion_align=args.motion_align,
                         spatial_attention=args.spatial_attention)
    text_encoder = build_text_encoder()
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                          prediction_type="v_prediction", clip_sample=False)
    params = list(unet.parameters()) + ([] if args.freeze_text_encoder else list(text_encoder.parameters()))
    frozen_states = None
    if args.freeze_text_encoder:
        text_encoder.requires_grad_(False)
        with torch.no_grad():  # the encoder never changes: encode every prompt once
            frozen_states = torch.cat([text_encoder(input_ids=ids.input_ids[i:i + 1024],
                                                    attention_mask=ids.attention_mask[i:i + 1024]).last_hidden_state
                                       for i in range(0, len(ids.input_ids), 1024)])
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    lr_at = lambda s: args.lr * min(1.0, (s + 1) / 200) * 0.5 * (1 + np.cos(np.pi * min(s, args.steps) / args.steps))  # noqa: E731
    ema_unet, ema_text = copy.deepcopy(unet), copy.deepcopy(text_encoder)
    step, elapsed, rng = 0, 0.0, np.random.default_rng(args.seed + 1)
    ckpt_path = run / "checkpoint.pt"
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, weights_only=False)
        unet.load_state_dict(ck["unet"]); text_encoder.load_state_dict(ck["text"])
        ema_unet.load_state_dict(ck["ema_unet"]); ema_text.load_state_dict(ck["ema_text"])
        opt.load_state_dict(ck["opt"]); step, elapsed = ck["step"], ck["elapsed"]
        rng.bit_generator.state = ck["rng"]; torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from step {step} ({elapsed / 60:.1f} min)")
    abar = sched.alphas_cumprod
    log = open(run / "log.jsonl", "a")
    start, losses = time.time() - elapsed, []
    bar = tqdm(total=args.steps, initial=step, desc="training")

    def checkpoint():
        nonlocal elapsed
        elapsed = time.time() - start
        save_atomic({"unet": unet.state_dict(), "text": text_encoder.state_dict(),
                     "ema_unet": ema_unet.state_dict(), "ema_text": ema_text.state_dict(),
                     "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                     "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}, ckpt_path)
        meta = {"steps": step, "minutes": round(elapsed / 60, 1), "batch": args.batch, "weighting": args.weighting,
                "timestep_shift": args.timestep_shift, "velocity_loss": args.velocity_loss,
                "velocity_detach": args.velocity_detach,
                "noise_frame_share": args.noise_frame_share,
                "final_loss": float(np.mean(losses[-100:])) if losses else None,
                "parameters": sum(p.numel() for m in (unet, text_encoder) for p in m.parameters()),
                "text_encoder": "frozen at init" if args.freeze_text_encoder else "trained",
                "pool": args.pool, "two_object_prob": args.two_object_prob, "seed": args.seed,
                "architecture": {k: v for k, v in unet.config.items() if not k.startswith("_")}}
        export(ema_unet, ema_text, tokenizer, sched, Path(args.out), meta)

    while step < args.steps and time.time() - start < args.max_minutes * 60:
        idx = rng.integers(0, len(clips), args.batch)
        x0 = torch.from_numpy(clips[idx]).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)
        drop = rng.random(args.batch) < args.uncond_prob
        tok_idx = torch.from_numpy(np.where(drop, len(prompts), idx))
        t = torch.from_numpy(sample_timesteps(rng, args.batch, args.timestep_shift))
        noise = frame_correlated_noise(tuple(x0.shape), args.noise_frame_share)
        a = abar[t].view(-1, 1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        states = frozen_states[tok_idx] if frozen_states is not None else text_encoder(
            input_ids=ids.input_ids[tok_idx], attention_mask=ids.attention_mask[tok_idx]).last_hidden_state
        pad = ids.attention_mask[tok_idx] == 0
        v = unet.clip_velocity(states, pad) if args.velocity_loss > 0 else None
        pred = unet(xt, t, states, ids.attention_mask[tok_idx], return_dict=False,
                    velocity=v.detach() if args.velocity_detach else v)[0]
        target = a.sqrt() * noise - (1 - a).sqrt() * x0  # v-prediction (stable x0 at high noise)
        snr = abar[t] / (1 - abar[t])
        weight = (snr.clamp(max=5.0) / (snr + 1)).view(-1) if args.weighting == "min-snr" else torch.ones_like(snr)
        loss = (weight * F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3, 4))).mean()
        total = loss
        if args.velocity_loss > 0:  # the head's velocity against the clip's measured one (single objects)
            keep = single[idx] & torch.from_numpy(~drop)
            if keep.any():
                total = loss + args.velocity_loss * F.mse_loss(v[keep], measured[idx][keep])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(0.999, (1 + step) / (10 + step))
        ema_update(ema_unet, unet, decay)
        ema_update(ema_text, text_encoder, decay)
        step += 1
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if step % 50 == 0:
            log.write(json.dumps({"step": step, "loss": float(np.mean(losses[-50:])),
                                  "minutes": round((time.time() - start) / 60, 2),
                                  "velocity": motion_word_velocities(ema_unet, text_encoder, tokenizer)}) + "\n")
            log.flush()
        if step % args.ckpt_every == 0:
            checkpoint()
    checkpoint()
    print(f"done: {step} steps in {elapsed / 60:.1f} min; weights in {args.out}")


if __name__ == "__main__":
    main()
