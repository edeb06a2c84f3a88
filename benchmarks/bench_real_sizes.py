"""Time one study item of a real model's architecture, with random weights, on this machine's GPU.

    python benchmarks/bench_real_sizes.py [--models wan2.1-t2v-1.3b cogvideox-5b ltx-video] [--repeats 3]

Speed does not depend on the weights' values, so the real transformer and VAE classes
built at the real repos' sizes (random init, bfloat16) give the time a study item costs
with the real weights: per denoising step one CFG forward pass on the batched
[uncond, cond] latents (two passes for Wan), the SAMG combination on its output, and
one VAE decode per clip. The text encoder is left out (one call per item). Sizes are the
study configs' (configs/sweeps/*_study.yaml). Prints a markdown table, then one row per skip
policy (`--skips`, samg_video.guidance.skip): its denoiser calls per clip and seconds per clip,
from the policy's own plan of the run and the timed step with and without the unconditional pass
(a conditional-only step: the batched call on half the batch, or Wan's one call of two).

A policy that decides from the predictions (adaptive, error) has no plan without them; with
`--plans RUN_DIR` (a sweep folder that ran it) each of its clips' recorded share of computed
steps is carried to the model's step count, and its row gives the mean and the range over clips:

    python benchmarks/bench_real_sizes.py --skips off every:3 error:0.3 --plans runs/skip_heldout
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


from samg_video import guidance

# transformer configs of the real repos (model cards / transformer/config.json), the study's clip sizes
MODELS = {
    "wan2.1-t2v-1.3b": dict(
        transformer=("WanTransformer3DModel", dict(
            patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
            text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)),
        vae=("AutoencoderKLWan", {}), vae_dtype=torch.float32, frames=49, size=(480, 832), steps=30, spatial=8,
        temporal=4, channels=16,
        text=(512, 4096), calls=2),
    "cogvideox-5b": dict(
        transformer=("CogVideoXTransformer3DModel", dict(
            num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16, time_embed_dim=512,
            text_embed_dim=4096, num_layers=42, sample_width=90, sample_height=60, sample_frames=49, patch_size=2,
            temporal_compression_ratio=4, max_text_seq_length=226, use_rotary_positional_embeddings=True)),
        vae=("AutoencoderKLCogVideoX", dict(block_out_channels=(128, 256, 256, 512), latent_channels=16,
                                           layers_per_block=3)),
        frames=49, size=(480, 720), steps=50, spatial=8, temporal=4, channels=16, text=(226, 4096), calls=1),
    "ltx-video": dict(
        transformer=("LTXVideoTransformer3DModel", dict(
            in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32,
            attention_head_dim=64, cross_attention_dim=2048, num_layers=28, caption_channels=4096)),
        vae=("AutoencoderKLLTXVideo", {}), frames=97, size=(512, 704), steps=30, spatial=32, temporal=8,
        channels=128, text=(128, 4096), calls=1),
}


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward(name: str, model, spec: dict, latents: torch.Tensor, text: torch.Tensor):
    """One denoiser call on the batched [uncond, cond] input, as the pipeline makes it."""
    t = torch.full((latents.shape[0],), 500.0, device=latents.device)
    if name == "ltx-video":
        b, c, f, h, w = latents.shape
        tokens = latents.permute(0, 2, 3, 4, 1).reshape(b, f * h * w, c)
        mask = torch.ones(text.shape[:2], device=text.device, dtype=torch.long)
        return model(hidden_states=tokens, encoder_hidden_states=text, timestep=t, encoder_attention_mask=mask,
                     num_frames=f, height=h, width=w, return_dict=False)[0]
    if name == "cogvideox-5b":
        from diffusers.models.embeddings import get_3d_rotary_pos_embed

        frames = latents.permute(0, 2, 1, 3, 4)  # B F C H W
        grid_h, grid_w = frames.shape[3] // 2, frames.shape[4] // 2
        rope = get_3d_rotary_pos_embed(64, None, (grid_h, grid_w), frames.shape[1], grid_type="slice",
                                       max_size=(grid_h, grid_w), device=latents.device)
        return model(hidden_states=frames, encoder_hidden_states=text, timestep=t, image_rotary_emb=rope,
                     return_dict=False)[0]
    return model(hidden_states=latents, timestep=t, encoder_hidden_states=text, return_dict=False)[0]


def bench(name: str, repeats: int, device: str, dtype: torch.dtype, shrink: int) -> dict:
    import diffusers

    spec = MODELS[name]
    cls, config = spec["transformer"]
    if shrink > 1:  # a CPU dry run of the code paths: 2 layers, small clips
        config = {**config, "num_layers": 2}
    with torch.device(device):
        model = getattr(diffusers, cls)(**config).to(dtype).eval()
        vae_dtype = spec.get("vae_dtype", dtype)  # the card's per-component dtype (Wan: VAE in float32)
        vae = getattr(diffusers, spec["vae"][0])(**spec["vae"][1]).to(vae_dtype).eval()
    frames, (height, width) = spec["frames"], spec["size"]
    if shrink > 1:
        frames = spec["temporal"] + 1
        height, width = height // shrink // 16 * 16 or 64, width // shrink // 16 * 16 or 64
    f = (frames - 1) // spec["temporal"] + 1
    h, w = height // spec["spatial"], width // spec["spatial"]
    g = torch.Generator(device).manual_seed(0)
    latents = torch.randn((2, spec["channels"], f, h, w), generator=g, device=device, dtype=dtype)
    text = torch.randn((2, *spec["text"]), generator=g, device=device, dtype=dtype)
    samg = guidance.create("samg", w_min=3, w_max=8, temporal_sigma=1.0)
    with torch.no_grad():
        cond_only = timed(lambda: forward(name, model, spec, latents[:1], text[:1]), repeats)
        step = timed(lambda: [forward(name, model, spec, latents[:1] if spec["calls"] == 2 else latents,
                                      text[:1] if spec["calls"] == 2 else text) for _ in range(spec["calls"])],
                     repeats)
        pred = torch.randn((1, spec["channels"], f, h, w), generator=g, device=device, dtype=dtype)
        cfg_line = timed(lambda: pred + 5.0 * (pred * 1.01 - pred), repeats)
        samg_line = timed(lambda: samg(pred, pred * 1.01, step=0, num_steps=2), repeats)
        decode = timed(lambda: vae.decode(latents[:1].to(vae_dtype), return_dict=False), 1)
    steps = spec["steps"]
    return {"model": name, "clip": f"{frames} x {height} x {width}", "steps": steps, "step_s": step,
            "cfg_ms": cfg_line * 1e3, "samg_ms": samg_line * 1e3, "decode_s": decode, "cond_only_s": cond_only,
            "item_cfg_s": steps * (step + cfg_line) + decode, "item_samg_s": steps * (step + samg_line) + decode}


def plan_of(spec: str, steps: int) -> list[str]:
    """The plans a data-independent skip policy (every, interval) makes over a run of `steps`."""
    from samg_video.guidance.skip import SkipState, parse_policy

    policy, state, plans = parse_policy(spec), SkipState(), []
    for i in range(steps):
        state = policy.entered(i, steps, state)
        plan = policy.plan(i, steps, state)
        state = policy.observe(state, i, torch.zeros(1) if plan == "compute" else None, plan, torch.ones(1))
        plans.append(plan)
    return plans


def deciding(spec: str) -> bool:
    """Whether a policy's plan depends on the predictions (it records a signal)."""
    from samg_video.guidance.skip import SkipPolicy, parse_policy

    policy = parse_policy(spec)
    return policy is not None and type(policy).signal is not SkipPolicy.signal


def recorded_shares(run_dir: str, spec: str) -> list[float]:
    """Each clip's share of computed steps under `spec` in a sweep folder's records (`plan`)."""
    from samg_video.guidance.skip import parse_policy
    from samg_video.manifest import read_manifest

    wanted = parse_policy(spec).to_dict()
    return [r["plan"].count("C") / len(r["plan"]) for r in read_manifest(run_dir)
            if r.get("method", {}).get("skip") == wanted and r.get("plan")]


def skip_rows(r: dict, policies: list[str], shares: dict[str, list[float]]) -> list[str]:
    """Markdown rows: per policy, denoiser calls per clip (batch rows of one item) and seconds per clip;
    for a deciding policy, the mean and the range over its recorded clips (`shares`)."""
    rows = []
    steps = r["steps"]
    for spec in policies:
        if spec in shares:
            fulls = [round(share * steps) for share in shares[spec]]
        else:
            fulls = [(plan_of(spec, steps) if spec != "off" else ["compute"] * steps).count("compute")]
        calls = [2 * full + steps - full for full in fulls]
        seconds = [full * (r["step_s"] + r["samg_ms"] / 1e3) + (steps - full) * r["cond_only_s"] + r["decode_s"]
                   for full in fulls]
        spread = lambda v, f: f"{statistics.mean(v):{f}} ({min(v):{f}}-{max(v):{f}})" if len(v) > 1 else f"{v[0]:{f}}"  # noqa: E731
        rows.append(f"| {r['model']} | {spec} | {spread(calls, '.1f' if len(calls) > 1 else 'd')} | "
                    f"{spread(seconds, '.1f')} | {spread([s / r['item_samg_s'] for s in seconds], '.2f')} |")
    return rows


def main() -> None:
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--shrink", type=int, default=1, help="CPU dry run: 2 layers, clips this many times smaller")
    p.add_argument("--skips", nargs="+", default=["off", "every:2", "every:3", "interval:0-0.6"],
                   help="skip policies whose calls and seconds per clip to print (every / interval: their plan "
                        "does not depend on the predictions; adaptive / error: with --plans)")
    p.add_argument("--plans", help="a sweep folder that ran the deciding policies of --skips: their clips' recorded "
                                   "shares of computed steps give those rows (mean and range over clips)")
    args = p.parse_args()
    shares = {}
    for spec in args.skips:
        if not deciding(spec):
            continue
        if not args.plans:
            p.error(f"--skips {spec}: this policy decides from the predictions; give --plans RUN_DIR, a sweep "
                    "folder that ran it, for its recorded plans")
        shares[spec] = recorded_shares(args.plans, spec)
        if not shares[spec]:
            p.error(f"--plans {args.plans} holds no clip recorded under skip {spec}; run a sweep with it first")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"{name}, torch {torch.__version__}, bfloat16, random weights at the real sizes, median of {args.repeats}")
    print("| model | clip F x H x W | steps | denoiser s/step | CFG line ms | SAMG ms | VAE decode s | "
          "item s (CFG) | item s (SAMG) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for model in args.models:
        r = bench(model, args.repeats, device, torch.bfloat16, args.shrink)
        results.append(r)
        print(f"| {r['model']} | {r['clip']} | {r['steps']} | {r['step_s']:.3f} | {r['cfg_ms']:.2f} | "
              f"{r['samg_ms']:.2f} | {r['decode_s']:.2f} | {r['item_cfg_s']:.1f} | {r['item_samg_s']:.1f} |",
              flush=True)
        torch.cuda.empty_cache() if device == "cuda" else None
    print("\nSAMG with a skip policy (calls: denoiser evaluations per clip, one item; ratio: to SAMG with every pass"
          + (f"; deciding policies: mean (range) over the clips of {args.plans}" if shares else "") + ")")
    print("| model | skip | denoiser calls / clip | item s | ratio |")
    print("|---|---|---:|---:|---:|")
    for r in results:
        print("\n".join(skip_rows(r, args.skips, shares)))


if __name__ == "__main__":
    main()
