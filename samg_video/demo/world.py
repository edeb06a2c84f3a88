"""The synthetic world of the bundled model: coloured shapes moving on black.

A clip is `F` frames of `H x W` RGB, values in [0, 1], layout `(F, H, W, 3)`.
A prompt names one or two objects:

    "a red circle moving left"
    "a blue square moving up and a green triangle standing still"

Every clip is rendered exactly from an `ObjectSpec` list, so prompt adherence can be
scored exactly (`samg_video.demo.score`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch loads where a clip is drawn, not to read a prompt
    import torch

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.15, 0.35, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "magenta": (1.0, 0.0, 1.0),
    "cyan": (0.0, 1.0, 1.0),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = ("left", "right", "up", "down", "still")
VELOCITY = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "still": (0, 0)}

NUM_FRAMES = 8
SIZE = 32
SPEED = 1.5  # pixels per frame
RADIUS = 5.0  # half the extent of every shape, pixels
MARGIN = 1.0
MIN_GAP = 2 * RADIUS + 2  # closest approach of two objects' centres

VOCABULARY = tuple(
    sorted({"a", "an", "and", "moving", "standing", "still", "left", "right", "up", "down"}
           | set(COLORS) | set(SHAPES))
)


@dataclass(frozen=True)
class ObjectSpec:
    """One object: colour, shape, motion and its centre at frame 0 (x, y in pixels)."""

    color: str
    shape: str
    motion: str
    x: float = SIZE / 2
    y: float = SIZE / 2

    def phrase(self) -> str:
        verb = "standing still" if self.motion == "still" else f"moving {self.motion}"
        return f"a {self.color} {self.shape} {verb}"


def prompt_of(objects: list[ObjectSpec]) -> str:
    """The canonical prompt for a list of objects."""
    return " and ".join(o.phrase() for o in objects)


def normalise(prompt: str) -> str:
    """A prompt as the model reads it: lower case, punctuation dropped, single spaces
    ("A RED circle moving LEFT!" -> "a red circle moving left")."""
    return " ".join("".join(ch if ch.isalnum() else " " for ch in prompt.lower()).split())


def parse_prompt(prompt: str) -> list[tuple[str, str, str]]:
    """Parse a prompt (read as `normalise` reads it) into `(color, shape, motion)` triples.

    Raises ValueError naming the unknown word (with the vocabulary) or the grammar.
    """
    words = normalise(prompt).split()
    unknown = [w for w in words if w not in VOCABULARY]
    if unknown:
        raise ValueError(
            f"Unknown word {unknown[0]!r} in prompt {prompt!r}; the bundled model knows only: "
            f"{', '.join(VOCABULARY)}."
        )
    phrases, current = [], []
    for w in words + ["and"]:
        if w == "and":
            phrases.append(current)
            current = []
        else:
            current.append(w)
    return [_parse_phrase(p, prompt) for p in phrases]


def _parse_phrase(words: list[str], prompt: str) -> tuple[str, str, str]:
    grammar = ("Write each object as 'a COLOR SHAPE moving DIRECTION' or "
               "'a COLOR SHAPE standing still', joined by 'and'.")
    if words and words[0] in ("a", "an"):
        words = words[1:]
    if len(words) != 4 or words[0] not in COLORS or words[1] not in SHAPES:
        raise ValueError(f"Cannot parse {' '.join(words)!r} in prompt {prompt!r}. {grammar}")
    verb, arg = words[2], words[3]
    if verb == "standing" and arg == "still":
        return words[0], words[1], "still"
    if verb == "moving" and arg in MOTIONS and arg != "still":
        return words[0], words[1], arg
    raise ValueError(f"Cannot parse motion {verb + ' ' + arg!r} in prompt {prompt!r}. {grammar}")


def trajectory(obj: ObjectSpec, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Centre of the object per frame, shape (F, 2) as (x, y)."""
    vx, vy = VELOCITY[obj.motion]
    t = np.arange(num_frames, dtype=np.float64)
    return np.stack([obj.x + SPEED * vx * t, obj.y + SPEED * vy * t], axis=1)


def _start_range(motion_component: int, num_frames: int) -> tuple[float, float]:
    lo, hi = RADIUS + MARGIN, SIZE - RADIUS - MARGIN
    span = SPEED * (num_frames - 1)
    if motion_component < 0:
        return lo + span, hi
    if motion_component > 0:
        return lo, hi - span
    return lo, hi


def place(color: str, shape: str, motion: str, rng: np.random.Generator,
          num_frames: int = NUM_FRAMES) -> ObjectSpec:
    """An object with a random start that keeps it inside the frame for the whole clip."""
    vx, vy = VELOCITY[motion]
    x = rng.uniform(*_start_range(vx, num_frames))
    y = rng.uniform(*_start_range(vy, num_frames))
    return ObjectSpec(color, shape, motion, float(x), float(y))


def _apart(a: ObjectSpec, b: ObjectSpec, num_frames: int) -> bool:
    gap = np.linalg.norm(trajectory(a, num_frames) - trajectory(b, num_frames), axis=1)
    return bool(gap.min() >= MIN_GAP)


def place_all(triples: list[tuple[str, str, str]], rng: np.random.Generator,
              num_frames: int = NUM_FRAMES, tries: int = 200) -> list[ObjectSpec]:
    """Place objects so that no two ever overlap (rejection sampling)."""
    for _ in range(tries):
        objs = [place(*t, rng=rng, num_frames=num_frames) for t in triples]
        if all(_apart(a, b, num_frames) for i, a in enumerate(objs) for b in objs[i + 1:]):
            return objs
    raise ValueError(f"Could not place {len(triples)} objects without overlap.")


def single_object_prompts() -> list[str]:
    """All single-object prompts of the grammar (6 colours x 3 shapes x 5 motions = 90)."""
    return [prompt_of([ObjectSpec(c, s, m)]) for c in COLORS for s in SHAPES for m in MOTIONS]


def random_triples(rng: np.random.Generator, num_objects: int) -> list[tuple[str, str, str]]:
    """Random `(color, shape, motion)` triples with distinct colours."""
    colors = rng.choice(list(COLORS), size=num_objects, replace=False)
    return [(str(c), str(rng.choice(SHAPES)), str(rng.choice(MOTIONS))) for c in colors]


def random_scene(rng: np.random.Generator, two_object_prob: float = 0.4,
                 num_frames: int = NUM_FRAMES) -> list[ObjectSpec]:
    """A random scene of one or two objects."""
    n = 2 if rng.random() < two_object_prob else 1
    return place_all(random_triples(rng, n), rng, num_frames)


def inside(shape: str, dx: torch.Tensor, dy: torch.Tensor, radius: float | None = None) -> torch.Tensor:
    """Boolean coverage of a shape centred at 0; dx, dy are pixel offsets (y down);
    `radius` defaults to RADIUS."""
    r = RADIUS if radius is None else radius
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        half = r * 0.9
        return (dx.abs() <= half) & (dy.abs() <= half)
    # triangle pointing up: apex at (0, -r), base at y = +r, half-width r at the base
    frac = (dy + r) / (2 * r)
    return (frac >= 0) & (frac <= 1) & (dx.abs() <= frac * r * 1.1)


def render(objects: list[ObjectSpec], num_frames: int = NUM_FRAMES, size: int = SIZE,
           supersample: int = 4, radius: float | None = None) -> torch.Tensor:
    """Render a clip, shape (F, H, W, 3), float32 in [0, 1]; later objects are drawn on top.
    `radius` (default RADIUS) sets the objects' size."""
    import torch  # here, not at the top: a prompt's words are checked without torch

    s = supersample
    coords = (torch.arange(size * s, dtype=torch.float32) + 0.5) / s
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    clip = torch.zeros(num_frames, size * s, size * s, 3)
    for obj in objects:
        centres = torch.from_numpy(trajectory(obj, num_frames)).float()
        dx = xx[None] - centres[:, 0, None, None]
        dy = yy[None] - centres[:, 1, None, None]
        mask = inside(obj.shape, dx, dy, radius)
        clip[mask] = torch.tensor(COLORS[obj.color])
    clip = clip.permute(0, 3, 1, 2)
    clip = torch.nn.functional.avg_pool2d(clip, s)
    return clip.permute(0, 2, 3, 1).contiguous()


def render_batch(scenes: list[list[ObjectSpec]], num_frames: int = NUM_FRAMES, supersample: int = 4) -> torch.Tensor:
    """Render scenes into model space: (B, 3, F, H, W) in [-1, 1]."""
    import torch

    clips = torch.stack([render(s, num_frames, supersample=supersample) for s in scenes])  # B F H W 3
    return clips.permute(0, 4, 1, 2, 3) * 2 - 1
