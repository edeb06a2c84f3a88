"""The model registry: one YAML card per model in `models/registry/`, and offline loading.

A card names the Hub repo, the diffusers pipeline class, dtype, default frames,
resolution, steps, the pipeline's own CFG scale and the recommended SAMG setting.
Loading never downloads: weights come from a local folder (`model_path`) or the
Hugging Face cache, and their absence is one clear error naming the repo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

REGISTRY_DIR = Path(__file__).resolve().parents[2] / "models" / "registry"
DTYPES = ("float32", "float16", "bfloat16")


def cards() -> dict[str, dict]:
    """All registry cards by name."""
    found = {}
    for path in sorted(REGISTRY_DIR.glob("*.yaml")):
        card = yaml.safe_load(path.read_text())
        found[card["name"]] = card
    return found


def card(name: str) -> dict:
    known = cards()
    if name not in known:
        raise ValueError(f"Unknown model {name!r}; available: {', '.join(known)} (see `samg-video models`).")
    return known[name]


def _missing(card: dict, source: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Weights for {card['name']} ({source}) are not on this machine and samg-video never downloads; "
        f"fetch them once with `huggingface-cli download {card['repo']}` or pass --model-path /folder/with/the/pipeline.")


def load_model(card: dict, model_path: str | None = None, device: str = "cpu", dtype: str | None = None,
               cpu_offload: bool = False, vae_tiling: bool = False):
    """The card's diffusers pipeline from local files only (a folder, or the Hub cache)."""
    import diffusers
    import torch

    dtype = dtype or card.get("dtype", "float32")
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}.")
    source = model_path or card["repo"]
    options = dict(torch_dtype=getattr(torch, dtype), local_files_only=True)
    try:
        if "motion_adapter" in card:
            adapter = diffusers.MotionAdapter.from_pretrained(card["motion_adapter"], **options)
            options["motion_adapter"] = adapter
        pipe = getattr(diffusers, card["pipeline"]).from_pretrained(source, **options)
    except OSError as err:
        raise _missing(card, source) from err
    if vae_tiling and hasattr(pipe, "vae"):
        pipe.vae.enable_tiling()
    if cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def call_kwargs(card: dict, frames: int | None, height: int | None, width: int | None, steps: int | None) -> dict:
    """Arguments for the pipeline call: card defaults, overridden where given; CFG switched on."""
    h, w = card["resolution"]
    kwargs = dict(height=height or h, width=width or w, num_inference_steps=steps or card["steps"],
                  guidance_scale=card.get("guidance_scale", 5.0), output_type="np")
    if card.get("frames", 1) > 1:
        kwargs["num_frames"] = frames or card["frames"]
    for key in ("true_cfg_scale", "negative_prompt"):
        if key in card:
            kwargs[key] = card[key]
    return kwargs


def frames_of(output) -> np.ndarray:
    """The first clip of a pipeline output as (F, H, W, 3) floats in [0, 1] (an image is one frame)."""
    if hasattr(output, "frames"):
        clip = np.asarray(output.frames[0], dtype=np.float32)
    else:
        clip = np.asarray(output.images[0], dtype=np.float32)[None]
    if clip.ndim == 4 and clip.shape[-1] != 3 and clip.shape[1] == 3:
        clip = clip.transpose(0, 2, 3, 1)
    return clip
