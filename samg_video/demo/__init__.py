"""The bundled text-to-video model and its synthetic world.

The world and the scorer import without diffusers; the pipeline (diffusers) loads on first use.
"""
from .score import detect, score
from .world import COLORS, MOTIONS, SHAPES, VOCABULARY, ObjectSpec, parse_prompt, prompt_of, render

__all__ = ["detect", "score", "COLORS", "MOTIONS", "SHAPES", "VOCABULARY", "ObjectSpec", "parse_prompt", "prompt_of",
           "render", "DemoVideoPipeline", "load_pipeline"]

_PIPELINE = ("DemoVideoPipeline", "load_pipeline")


def __getattr__(name):
    if name in _PIPELINE:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
