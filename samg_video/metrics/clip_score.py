"""Text-video alignment: mean CLIPScore over frames, from a local CLIP.

CLIPScore (Hessel et al. 2021) with the convention most video papers use:

    clip_score = mean over frames t of 100 * max(cos(E_img(frame_t), E_txt(prompt)), 0)

E_img / E_txt are the projected embeddings of `CLIPModel.get_image_features` /
`get_text_features` (their `pooler_output` in transformers 5); frames are preprocessed by the
model's own `CLIPImageProcessor` (resize
the shortest side to 224 bicubic, centre crop 224, scale to [0, 1], normalise with the
CLIP mean and std), the prompt by its tokenizer (truncated to the model's 77 tokens).
Scores are comparable only between runs with the same CLIP weights; record them
(`clip_model`) beside the number.

Weights are never downloaded: `clip_model` is a folder or a repo id in the Hugging
Face cache (e.g. `openai/clip-vit-base-patch32`, `openai/clip-vit-large-patch14`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import Metric

FRAMES_PER_BATCH = 16


@lru_cache(maxsize=2)
def load_clip(clip_model: str):
    """(CLIPModel in eval mode, CLIPProcessor) from local files only; one sentence if missing."""
    from transformers import CLIPModel, CLIPProcessor

    try:
        model = CLIPModel.from_pretrained(clip_model, local_files_only=True).eval()
        processor = CLIPProcessor.from_pretrained(clip_model, local_files_only=True)
    except OSError:
        raise FileNotFoundError(
            f"CLIP weights {clip_model!r} are not on this machine and samg-video never downloads; fetch them once "
            f"with `hf download {clip_model}` (a Hub repo such as openai/clip-vit-base-patch32) or pass the folder "
            "that holds them.") from None
    return model, processor


def features(output):
    """The projected embedding: a tensor (transformers 4) or the output's pooler_output (transformers 5)."""
    return output if hasattr(output, "norm") else output.pooler_output


def cosine(a, b):
    """Cosine similarity of matching rows (or of each row of `a` with the single row `b`)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    return (a * b).sum(-1)


class CLIPScore(Metric):
    """Mean CLIPScore of the frames against one prompt (see the module docstring)."""

    name = "clip_score"
    temporal = False

    def __init__(self, clip_model: str, prompt: str):
        if not prompt:
            raise ValueError("clip_score needs the prompt the video was generated from (--prompt).")
        self.clip_model, self.prompt, self.pending, self.scores = clip_model, prompt, [], []
        self.model, self.processor = load_clip(clip_model)
        self.text = self._text_features()

    def _text_features(self):
        import torch

        tokens = self.processor.tokenizer([self.prompt], padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            return features(self.model.get_text_features(**tokens))

    def _flush(self) -> None:
        import torch

        if not self.pending:
            return
        pixels = self.processor.image_processor(images=self.pending, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            image = features(self.model.get_image_features(pixel_values=pixels))
        self.scores += (100 * cosine(image, self.text).clamp_min(0)).tolist()
        self.pending = []

    def frame(self, frame: np.ndarray) -> None:
        self.pending.append(frame)
        if len(self.pending) >= FRAMES_PER_BATCH:
            self._flush()

    def result(self) -> dict:
        self._flush()
        return {"clip_score": float(np.mean(self.scores)) if self.scores else None}
