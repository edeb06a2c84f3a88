"""Prompt suites of the synthetic world, drawn from fixed seeds (disjoint from training's streams)."""

from __future__ import annotations

import numpy as np

from .world import ObjectSpec, prompt_of, random_triples

SEED = 20261125
TUNED = 64  # the first TUNED prompts of each kind from SEED: what every study before the held-out suite drew from


def prompts(n: int, objects: int, seed: int = SEED) -> list[str]:
    """n prompts with `objects` objects each (distinct colours), reproducible."""
    rng = np.random.default_rng([seed, objects])
    return [prompt_of([ObjectSpec(*t) for t in random_triples(rng, objects)]) for _ in range(n)]


def held_out(n: int, objects: int) -> list[str]:
    """n distinct prompts with `objects` objects that no suite of SEED up to TUNED per kind holds (so
    no setting chosen on single:N, double:N or mixed:N, N <= 128, has seen them); drawn from SEED + 1."""
    seen = set(prompts(TUNED, objects))
    rng = np.random.default_rng([SEED + 1, objects])
    out: list[str] = []
    for _ in range(100_000):
        if len(out) == n:
            return out
        p = prompt_of([ObjectSpec(*t) for t in random_triples(rng, objects)])
        if p not in seen and p not in out:
            out.append(p)
    raise ValueError(f"The bundled world has fewer than {n} held-out prompts with {objects} object(s).")


def suite(name: str) -> list[str]:
    """'single:N', 'double:N' or 'mixed:N' (half single-object, half two-object), or 'heldout:N' (half
    and half, distinct, none of them in any of the former with N <= 128: `held_out`)."""
    kind, _, count = name.partition(":")
    n = int(count or 64)
    if kind == "heldout":
        return held_out(n - n // 2, 1) + held_out(n // 2, 2)
    if kind == "single":
        return prompts(n, 1)
    if kind == "double":
        return prompts(n, 2)
    if kind == "mixed":
        return prompts(n - n // 2, 1) + prompts(n // 2, 2)
    raise ValueError(f"Unknown prompt suite {name!r}; use single:N, double:N, mixed:N or heldout:N.")
