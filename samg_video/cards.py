"""Model cards: one YAML file per model in `samg_video/models/registry/`, read without loading a model.

A card names the Hub repo (and older names), the diffusers pipeline class, dtypes,
default frames / resolution / steps / fps, the frame-count rule, the pipeline's own CFG
scale and the recommended SAMG setting; the bundled model has a card like any other.
Defaults, one rule: a value the user does not give comes from the card (the dtype: the
card's on an accelerator, float32 on the CPU).
"""

from __future__ import annotations

import copy
import functools

from .resources import package_path
from .yamlfile import read_yaml

REGISTRY_DIR = package_path("models", "registry")
MODELS_DIR = package_path("models")
DTYPES = ("float32", "float16", "bfloat16")


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, dict]:
    """The registry files, parsed once per process (package data: they do not change while it runs)."""
    found = {}
    for path in sorted(REGISTRY_DIR.glob("*.yaml")):
        card = read_yaml(path, "Model card")
        found[card["name"]] = card
    return found


def cards() -> dict[str, dict]:
    """All registry cards by name (copies: a caller may change its own)."""
    return copy.deepcopy(_registry())


def card(name: str) -> dict:
    """The card of model `name` (`samg-video models` lists them); an unknown name is one sentence."""
    known = _registry()
    if name not in known:
        raise ValueError(f"Unknown model {name!r}; available: {', '.join(known)} (see `samg-video models`).")
    return copy.deepcopy(known[name])


def repos(card: dict) -> list[str]:
    """The card's Hub repo followed by the names it was published under before."""
    return [card["repo"], *card.get("repo_aliases", [])]


def resolve_dtype(card: dict, dtype: str | None, device: str) -> str:
    """The explicit dtype, else float32 on the CPU, else the card's."""
    dtype = dtype or ("float32" if device == "cpu" else card.get("dtype", "float32"))
    if dtype not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}.")
    return dtype


def round_frames(card: dict, frames: int) -> tuple[int, str | None]:
    """`frames` rounded to the card's rule `frame_step * k + 1` (nearest, at least 1 + step), with a note."""
    step = card.get("frame_step")
    if not step or (frames - 1) % step == 0:
        return frames, None
    rounded = max(step + 1, step * round((frames - 1) / step) + 1)
    return rounded, f"{card['name']} takes {step}k+1 frames; using {rounded} instead of {frames}."


def experts(card: dict) -> dict[str, float]:
    """{denoiser: its share of the main guidance scale} for a model with a second expert that its
    pipeline guides at its own scale (Wan 2.2 A14B: transformer_2 at guidance_scale_2)."""
    if card.get("guidance_scale_2") is None:
        return {}
    return {"transformer_2": card["guidance_scale_2"] / card["guidance_scale"]}


def check_applicable(card: dict, setting: dict) -> None:
    """Refuse, before any work, a setting the model cannot apply: the card's `fixed` values (the
    bundled model draws 32x32 frames in float32 only). `setting` maps option names (height, width,
    dtype, ...) to values, None where not given."""
    for key, value in card.get("fixed", {}).items():
        given = setting.get(key)
        if given is not None and given != value:
            raise ValueError(f"{card['name']} takes {key} {value} only, got {given}; leave --{key} out for this model.")
