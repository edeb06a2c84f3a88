"""The bundled text-to-video model and its synthetic world.

The world and the scorer import without diffusers; the pipeline (diffusers) loads on first use.
"""
from .score import detect, score
from .world import COLORS, MOTIONS, SHAPES, VOCABULARY, ObjectSpec, parse_prompt, prompt_of, render

__all__ = ["detect", "score", "COLORS", "MOTIONS", "SHAPES", "VOCABULARY", "ObjectSpec", "parse_prompt", "prompt_of",
           "render", "DemoVideoPipeline", "load_pipeline"]

_PIPELINE = ("DemoVideoPipeline", "load_pipeline")


def object_slots(model_dir: str | None = None) -> int:
    """How many objects the bundled U-Net draws (its config's `slots`), read without loading it."""
    import json
    from pathlib import Path

    from ..resources import package_path

    config = Path(model_dir) / "unet" / "config.json" if model_dir else package_path("models", "demo-t2v", "unet",
                                                                                       "config.json")
    try:
        return int(json.loads(config.read_text()).get("slots", 1))
    except (OSError, ValueError, TypeError):
        return 1  # no readable config here: the pipeline checks once it has loaded


def check_objects(prompt: str, slots: int) -> None:
    """One sentence when `prompt` names more objects than a U-Net of `slots` text slots draws."""
    objects = len(parse_prompt(prompt)) if prompt else 0
    if objects > slots > 1:
        raise ValueError(f"This model draws at most {slots} objects; {prompt!r} has {objects}.")


def __getattr__(name):
    if name in _PIPELINE:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
