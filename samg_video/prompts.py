"""Prompt suites: tagged suites shipped in samg_video/suites/*.yaml (prompts written to stress
guidance in video), and the generated suites of the bundled model's world (`world_suite`).

A suite file holds `categories` (name -> what the category stresses) and `prompts`, each
`{prompt: str, tags: [category, ...]}`; every tag must be a declared category.
"""

from __future__ import annotations

from pathlib import Path

from .demo.suites import suite as world_suite  # noqa: F401  ('single:N', 'double:N', 'mixed:N', 'heldout:N'; re-exported)
from .resources import package_path
from .yamlfile import read_yaml


def resolve(path: str | Path) -> Path:
    """A suite file as given when it exists, else the shipped suite of that name
    ('temporal' or 'temporal.yaml' -> samg_video/suites/temporal.yaml)."""
    path = Path(path)
    if path.exists() or len(path.parts) > 1:
        return path
    return package_path("suites", path.name if path.suffix else path.name + ".yaml")


def shipped_suites() -> list[str]:
    """Names of the prompt suites shipped in the package."""
    return sorted(p.stem for p in package_path("suites").glob("*.yaml"))


def load_prompts(path: str | Path) -> list[dict]:
    """The prompts of a suite file, checked: each has a prompt and only declared tags."""
    path = Path(path)
    data = read_yaml(path, "Prompt file", hint=f"the shipped suites are: {', '.join(shipped_suites())}")
    if not isinstance(data.get("prompts"), list):
        raise ValueError(f"{path} needs 'categories' and a list of 'prompts' ({{prompt: ..., tags: [...]}}).")
    categories = set(data.get("categories") or {})
    for entry in data["prompts"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("prompt"), str):
            raise ValueError(f"{path}: each prompt is {{prompt: text, tags: [category, ...]}}, got {entry!r}.")
        unknown = set(entry.get("tags", [])) - categories
        if unknown:
            raise ValueError(f"{path}: prompt {entry['prompt']!r} has undeclared tag {sorted(unknown)[0]!r}; "
                             f"the categories are: {', '.join(sorted(categories))}.")
    return [{"prompt": e["prompt"], "tags": list(e.get("tags", []))} for e in data["prompts"]]


def select(prompts: list[dict], categories: list[str] | None = None, per_category: int | None = None) -> list[dict]:
    """Prompts whose first tag is in `categories` (all when None), at most `per_category` of each,
    in file order."""
    counts: dict[str, int] = {}
    chosen = []
    for p in prompts:
        first = p["tags"][0] if p["tags"] else ""
        if categories is not None and first not in categories:
            continue
        if per_category is not None and counts.get(first, 0) >= per_category:
            continue
        counts[first] = counts.get(first, 0) + 1
        chosen.append(p)
    return chosen
