"""The bundled model's registry card (samg_video/models/registry/demo.yaml), readable without loading the model."""

from __future__ import annotations

from pathlib import Path

from ..resources import package_path

MODELS_DIR = package_path("models")
CARD = MODELS_DIR / "registry" / "demo.yaml"


def load_card(path: str | Path | None = None) -> dict:
    """The bundled model's registry card: defaults and recommended guidance."""
    import yaml

    card = Path(path) if path is not None and Path(path).suffix == ".yaml" else CARD
    if not card.is_file():
        raise FileNotFoundError(f"Model card {card} is missing; reinstall samg-video (or `git checkout samg_video/models/` in a checkout).")
    return yaml.safe_load(card.read_text())
