"""The bundled model's registry card (models/registry/demo.yaml), readable without loading the model."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
CARD = MODELS_DIR / "registry" / "demo.yaml"


def load_card(path: str | Path | None = None) -> dict:
    """The bundled model's registry card: defaults and recommended guidance."""
    import yaml

    card = Path(path) if path is not None and Path(path).suffix == ".yaml" else CARD
    if not card.is_file():
        raise FileNotFoundError(f"Model card {card} is missing; restore it with `git checkout models/`.")
    return yaml.safe_load(card.read_text())
