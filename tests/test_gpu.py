"""Tier (c): CUDA, bfloat16. Skipped without a GPU; run with `pytest -m gpu`.

On the stand-ins (tests/standins): every registry model generates through the CLI on
CUDA in bfloat16, and SAMG with equal scales is the pipeline's own CFG bit for bit
there too (the GPU's bf16 kernels round differently from the CPU's, so this is a
separate check). With `SAMG_VIDEO_WEIGHTS=/folder` holding real pipeline folders named
after registry models (`/folder/wan2.1-t2v-1.3b`, ...; AnimateDiff's adapter in
`/folder/animatediff-motion-adapter`), the same two checks run on the real weights,
at a reduced size and step count.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import standins
from samg_video import cli, media
from samg_video.pipelines import apply
from samg_video.cards import card, cards
from samg_video.pipelines.registry import load_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

PROMPT = "a red fox runs on the beach"
WEIGHTS = Path(os.environ["SAMG_VIDEO_WEIGHTS"]) if os.environ.get("SAMG_VIDEO_WEIGHTS") else None
REAL = sorted(n for n in cards() if n != "demo" and WEIGHTS is not None and (WEIGHTS / n).is_dir())
REAL_SIZE = {"frames": 9, "side": 256, "steps": 4}  # small enough for any registry model on one GPU


def sizes(name: str, real: bool) -> tuple[int, int, int]:
    if not real:
        return standins.SIZES[name]
    frames = REAL_SIZE["frames"] if card(name)["frames"] > 1 else 1
    if card(name).get("frame_step"):
        frames = card(name)["frame_step"] + 1
    return frames, REAL_SIZE["side"], REAL_SIZE["side"]


def folders(name: str, root: Path, real: bool) -> tuple[str, str | None]:
    adapter = (root / ("animatediff-motion-adapter" if real else "motion-adapter")) if name == "animatediff" else None
    return str(root / name), (str(adapter) if adapter else None)


def latents(pipe, name: str, scale: float, real: bool) -> torch.Tensor:
    frames, height, width = sizes(name, real)
    c = card(name)
    kwargs = dict(height=height, width=width, num_inference_steps=REAL_SIZE["steps"] if real else 2,
                  output_type="latent", generator=torch.Generator("cuda").manual_seed(0))
    if frames > 1 and "video" not in standins.inputs(name):
        kwargs["num_frames"] = frames
    if "true_cfg_scale" in c:
        kwargs.update(true_cfg_scale=scale, negative_prompt=c["negative_prompt"])
    else:
        kwargs["guidance_scale"] = scale
    out = pipe(prompt=PROMPT, **kwargs, **standins.inputs(name))
    return (out.frames if hasattr(out, "frames") else out.images).clone()


def check_bit_exact(name: str, root: Path, real: bool) -> None:
    path, adapter = folders(name, root, real)
    pipe = load_model(card(name), path, "cuda", "bfloat16", adapter_path=adapter)
    pipe.set_progress_bar_config(disable=True)
    w = card(name)["guidance_scale"]
    native = latents(pipe, name, w, real)
    with apply(pipe, "samg", w_min=w, w_max=w, temporal_sigma=1.0):
        guided = latents(pipe, name, w + 1.5, real)
    assert torch.equal(guided, native), (guided.float() - native.float()).abs().max().item()


def check_cli(name: str, root: Path, real: bool, tmp_path: Path) -> None:
    frames, height, width = sizes(name, real)
    path, adapter = folders(name, root, real)
    args = ["generate", "--model", name, "--model-path", path, "--prompt", PROMPT, "--out", str(tmp_path / "v.gif"),
            "--device", "cuda", "--dtype", "bfloat16", "--steps", str(REAL_SIZE["steps"] if real else 2),
            "--height", str(height), "--width", str(width), "--method", "samg"]
    args += ["--frames", str(frames)] if frames > 1 else []
    args += ["--adapter-path", adapter] if adapter else []
    assert cli.main(args) == 0
    assert media.read_video(tmp_path / "v.gif").shape == (frames, height, width, 3)


@pytest.mark.parametrize("name", standins.NAMES)
def test_standin_bf16_equal_scales_bit_exact_on_cuda(name, standin_root):
    check_bit_exact(name, standin_root, real=False)


@pytest.mark.parametrize("name", standins.NAMES)
def test_standin_generates_on_cuda(name, standin_root, tmp_path):
    check_cli(name, standin_root, False, tmp_path)


@pytest.mark.skipif(not REAL, reason="set SAMG_VIDEO_WEIGHTS to a folder of real pipeline folders")
@pytest.mark.parametrize("name", REAL or ["none"])
def test_real_weights(name, tmp_path):
    check_bit_exact(name, WEIGHTS, real=True)
    check_cli(name, WEIGHTS, True, tmp_path)
