"""Guidance methods: SAMG and the baselines, as small serialisable tensor functions.

    from samg_video import guidance
    m = guidance.create("samg", w_min=5, w_max=12, temporal_sigma=1.0)
    m.reset()
    out = m(pred_uncond, pred_cond, step=i, num_steps=n, layout="BCFHW")
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from . import apg, cfg, cfg_zero_star, dynamic_cfg, fdg, interval, mambo, perturbed, rescale, samg, tcfg  # noqa: F401  (register)
from . import fused  # noqa: I001  (guidance.fused.enable())
from .base import REGISTRY, Guidance, StepContext, parameters
from .layout import LAYOUTS
from .samg import SAMG

__all__ = ["available", "create", "from_dict", "load_config", "save_config", "Guidance", "SAMG",
           "StepContext", "LAYOUTS", "fused"]


def declared_parameters() -> dict:
    """{parameter name: (its method, its declaration)}: SAMG's and CFG's first, then each other method's in name
    order."""
    out: dict = {}
    for name in ["samg", "cfg", *sorted(REGISTRY)]:
        for p in parameters(REGISTRY[name]):
            out.setdefault(p.name, (name, p))
    return out


REGISTRY_PARAMETERS = declared_parameters()


def available() -> list[str]:
    """Names of the registered guidance methods."""
    return sorted(REGISTRY)


def create(name: str, **params) -> Guidance:
    """A new method object; unknown names or parameters raise ValueError listing the valid ones."""
    if name not in REGISTRY:
        raise ValueError(f"Unknown guidance method {name!r}; available: {', '.join(available())}.")
    cls = REGISTRY[name]
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"Unknown parameter {unknown[0]!r} for {name!r}; its parameters are: {', '.join(known)}.")
    return cls(**params)


def from_dict(config: dict) -> Guidance:
    """Inverse of `method.to_dict()`: {"method": name, **params}."""
    if "method" not in config:
        raise ValueError(f"A guidance config needs a 'method' key (one of {', '.join(available())}); "
                         f"got {sorted(config)}.")
    params = dict(config)
    return create(params.pop("method"), **params)


def load_config(path: str | Path) -> Guidance:
    """A method from a YAML preset (see configs/guidance/)."""
    from ..yamlfile import read_yaml

    return from_dict(read_yaml(path, "Guidance preset", hint="see configs/guidance/ for presets"))


def save_config(method: Guidance, path: str | Path) -> None:
    """Write a method's full config as YAML (loads back with `load_config`)."""
    from ..atomic import write_text

    write_text(path, yaml.safe_dump(method.to_dict(), sort_keys=False))
