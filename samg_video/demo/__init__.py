"""The bundled text-to-video model and its synthetic world.

The world imports without torch (a prompt's words are checked in a blink); the scorer (torch) and
the pipeline (diffusers) load on first use.
"""
from .world import COLORS, MOTIONS, SHAPES, VOCABULARY, ObjectSpec, parse_prompt, prompt_of, render

__all__ = ["detect", "score", "COLORS", "MOTIONS", "SHAPES", "VOCABULARY", "ObjectSpec", "parse_prompt", "prompt_of",
           "render", "DemoVideoPipeline", "load_pipeline"]

_PIPELINE = ("DemoVideoPipeline", "load_pipeline")
_SCORE = ("detect", "score")


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
    if name in _SCORE:  # the module `score` shares its name with its function: imported by path
        import importlib

        module = importlib.import_module(f"{__name__}.score")  # binds `score` to the module: rebound here
        globals().update({n: getattr(module, n) for n in _SCORE})
        return globals()[name]
    if name in _PIPELINE:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
