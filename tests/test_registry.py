"""Model registry: cards, `samg-video models`, and `generate --model` from local weights only."""

import pytest
import torch
from samg_video.pipelines.tiny import build_text_to_video_sd

from samg_video import cli, io
from samg_video.pipelines.registry import cards

REQUIRED = {"cogvideox-2b", "cogvideox-5b", "cogvideox1.5-5b", "modelscope-1.7b", "zeroscope-v2", "wan2.1-t2v-1.3b",
            "ltx-video", "animatediff", "hunyuanvideo", "sd15", "sdxl", "sd35-medium"}


def test_cards_are_complete():
    found = cards()
    assert REQUIRED <= set(found)
    for name, card in found.items():
        for key in ("pipeline", "layout", "dtype", "frames", "resolution", "steps", "recommended"):
            assert key in card, (name, key)
        assert card["recommended"]["w_min"] <= card["recommended"]["w_max"]
        if name != "demo":
            from samg_video.pipelines import ADAPTERS
            assert card["pipeline"] in ADAPTERS and "/" in card["repo"]


def test_models_command_lists_them(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REQUIRED) and "THUDM/CogVideoX-2b" in out


def test_missing_weights_fail_in_one_sentence_without_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    rc = cli.main(["generate", "--model", "cogvideox-2b", "--prompt", "a cat", "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "THUDM/CogVideoX-2b" in err and "huggingface-cli download" in err and "--model-path" in err


def test_generate_from_a_local_pipeline_folder(tmp_path, capsys):
    pipe, _, _ = build_text_to_video_sd()
    pipe.save_pretrained(tmp_path / "ms")
    rc = cli.main(["generate", "--model", "modelscope-1.7b", "--model-path", str(tmp_path / "ms"), "--prompt",
                   "a red fox runs", "--out", str(tmp_path / "v.mp4"), "--steps", "3", "--frames", "4",
                   "--height", "16", "--width", "16", "--dtype", "float32", "--save-scale-field"])
    assert rc == 0, capsys.readouterr().err
    assert io.read_video(tmp_path / "v.mp4").shape == (4, 16, 16, 3)
    assert io.read_video(tmp_path / "v_field.mp4").shape[0] == 4


def test_unknown_model_lists_registry(capsys):
    assert cli.main(["generate", "--model", "sora", "--prompt", "x", "--out", "x.mp4"]) == 2
    assert "available: animatediff" in capsys.readouterr().err
