"""The bundled model's registry card (samg_video/models/registry/demo.yaml) and folder."""

from __future__ import annotations

from ..resources import package_path

MODELS_DIR = package_path("models")


def load_card() -> dict:
    """The bundled model's registry card ('demo'): defaults, recommended guidance, version."""
    from ..pipelines.registry import card

    return card("demo")
