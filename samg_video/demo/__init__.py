"""The bundled text-to-video model and its synthetic world."""
from .score import detect, score
from .world import COLORS, MOTIONS, SHAPES, VOCABULARY, ObjectSpec, parse_prompt, prompt_of, render
from .pipeline import DemoVideoPipeline, load_card, load_pipeline
