"""clip_score: mean CLIPScore over frames from a local CLIP, against a computation done by hand."""

import numpy as np
import pytest
import torch

from samg_video import cli, metrics
from samg_video.metrics.clip_score import load_clip

PROMPT = "a red fox runs on the beach"


def by_hand(frames: np.ndarray, clip_dir: str, prompt: str) -> np.ndarray:
    """Per-frame cosine written out: resize the short side to 32 (bicubic), centre crop 32, scale to
    [0, 1], normalise with CLIP's mean / std, project both embeddings, cosine."""
    from PIL import Image
    from transformers import CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(clip_dir).eval()
    tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
    pixels = []
    for frame in frames:
        h, w = frame.shape[:2]
        size = (int(32 * w / h), 32) if h <= w else (32, int(32 * h / w))  # (width, height), short side 32
        image = np.asarray(Image.fromarray(frame).resize(size, Image.BICUBIC))
        top, left = (image.shape[0] - 32) // 2, (image.shape[1] - 32) // 2
        image = torch.from_numpy(image[top:top + 32, left:left + 32].copy()).permute(2, 0, 1)
        pixels.append((image.float() / 255 - mean) / std)
    with torch.no_grad():
        text = model.text_projection(model.text_model(**tokenizer([prompt], return_tensors="pt")).pooler_output)
        image = model.visual_projection(model.vision_model(pixel_values=torch.stack(pixels)).pooler_output)
    return torch.nn.functional.cosine_similarity(image, text).numpy()


def smooth_frames(count: int = 20) -> np.ndarray:
    """Low-frequency random frames (40 x 56: resize and crop both act), more than one batch."""
    import cv2

    rng = np.random.default_rng(0)
    return np.stack([cv2.resize(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), (56, 40),
                                interpolation=cv2.INTER_CUBIC) for _ in range(count)])


@pytest.mark.parametrize("prompt", ["red", "a cat", "dance on the beach"])
def test_clip_score_matches_hand_computation(clip_dir, prompt):
    """Per frame: 100 * max(cos, 0) of the metric equals the hand-computed cosine (the random tiny
    CLIP gives "red" positive cosines, "a cat" negative ones and the third prompt both: every branch runs)."""
    frames = smooth_frames()
    scorer = metrics.clip_score.CLIPScore(clip_dir, prompt)
    for frame in frames:
        scorer.frame(frame)
    mean = scorer.result()["clip_score"]
    cos = by_hand(frames, clip_dir, prompt)
    assert {"red": (cos > 0).all(), "a cat": (cos < 0).all()}.get(prompt, (cos > 0).any() and (cos < 0).any())
    # 2e-4 in cosine: resampling rounding
    np.testing.assert_allclose(scorer.scores, 100 * np.clip(cos, 0, None), atol=0.02)
    assert mean == pytest.approx(float(np.mean(100 * np.clip(cos, 0, None))), abs=0.02)
    assert metrics.compute(frames, metrics=["clip_score"], clip_model=clip_dir, prompt=prompt)["clip_score"] == mean


def test_default_set_gains_clip_score_with_a_model(clip_dir):
    frames = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    assert "clip_score" in metrics.compute(frames, metrics=None, clip_model=clip_dir, prompt=PROMPT)
    assert "clip_score" not in metrics.compute(frames, metrics=["flicker"])


def test_missing_clip_weights_are_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    load_clip.cache_clear()
    video = tmp_path / "v.gif"
    from samg_video import media
    media.write_video(np.zeros((3, 16, 16, 3), np.float32), video)
    rc = cli.main(["eval", str(video), "--clip-model", "openai/clip-vit-base-patch32", "--prompt", PROMPT])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "hf download openai/clip-vit-base-patch32" in err


def test_eval_command_reports_clip_score(clip_dir, tmp_path, capsys):
    from samg_video import media
    video = tmp_path / "v.gif"
    media.write_video(np.random.default_rng(1).random((4, 32, 32, 3)).astype(np.float32), video)
    assert cli.main(["eval", str(video), "--clip-model", clip_dir, "--prompt", PROMPT, "--metrics", "clip_score"]) == 0
    assert "clip_score" in capsys.readouterr().out
