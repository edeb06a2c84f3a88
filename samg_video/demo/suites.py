"""Prompt suites of the synthetic world, drawn from fixed seeds (disjoint from training's streams)."""

from __future__ import annotations

import numpy as np

from .world import ObjectSpec, prompt_of, random_triples

SEED = 20261125


def prompts(n: int, objects: int, seed: int = SEED) -> list[str]:
    """n prompts with `objects` objects each (distinct colours), reproducible."""
    rng = np.random.default_rng([seed, objects])
    return [prompt_of([ObjectSpec(*t) for t in random_triples(rng, objects)]) for _ in range(n)]


def suite(name: str) -> list[str]:
    """'single:N', 'double:N' or 'mixed:N' (half single-object, half two-object)."""
    kind, _, count = name.partition(":")
    n = int(count or 64)
    if kind == "single":
        return prompts(n, 1)
    if kind == "double":
        return prompts(n, 2)
    if kind == "mixed":
        return prompts(n - n // 2, 1) + prompts(n // 2, 2)
    raise ValueError(f"Unknown prompt suite {name!r}; use single:N, double:N or mixed:N.")
