"""Model registry: cards, `samg-video models`, and `generate --model` from local weights only."""

import pytest
import torch

from samg_video import cli, media
from samg_video.guidance.spec import parse_spec
from samg_video.cards import card, cards

REQUIRED = {"cogvideox-2b", "cogvideox-5b", "cogvideox1.5-5b", "modelscope-1.7b", "zeroscope-v2", "wan2.1-t2v-1.3b",
            "ltx-video", "animatediff", "hunyuanvideo", "sd15", "sdxl", "sd35-medium"}


def test_cards_are_complete():
    found = cards()
    assert REQUIRED <= set(found)
    for name, entry in found.items():
        for key in ("pipeline", "layout", "dtype", "frames", "resolution", "steps", "recommended"):
            assert key in entry, (name, key)
        assert entry["recommended"]["w_min"] <= entry["recommended"]["w_max"]
        if name != "demo":
            import diffusers

            import inspect

            from samg_video.pipelines.derive import calls_of, loop_source

            cls = getattr(diffusers, entry["pipeline"])  # CFG in its loop, or in a guider component it takes
            assert calls_of(loop_source(cls)) or "guider" in inspect.signature(cls.__init__).parameters, name
            assert "/" in entry["repo"]


def test_models_command_lists_them(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REQUIRED)
    header = out.splitlines()[0].split()
    assert header[:2] == ["name", "pipeline"] and {"fps", "steps", "CFG", "SAMG", "dtype", "weights"} <= set(header)
    wan = next(line for line in out.splitlines() if line.startswith("wan2.1-t2v-1.3b"))
    assert "81 x 480 x 832" in wan and " 16 " in wan and "[3.3, 8]" in wan and "not found" in wan
    assert "hunyuanvideo: guidance-distilled" in out and "true CFG" in out


def test_missing_weights_fail_in_one_sentence_without_download(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    rc = cli.main(["generate", "--model", "cogvideox-2b", "--prompt", "a cat", "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "`hf download zai-org/CogVideoX-2b`" in err and "--model-path" in err


@pytest.mark.parametrize("repo", ["zai-org/CogVideoX-2b", "THUDM/CogVideoX-2b"])
def test_cache_lookup_accepts_the_old_and_new_organisation(repo, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from samg_video.cards import card
    from samg_video.pipelines.registry import weights_source

    snapshot = tmp_path / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model_index.json").write_text('{"_class_name": "CogVideoXPipeline"}')
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs").mkdir()
    (tmp_path / f"models--{repo.replace('/', '--')}" / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert weights_source(card("cogvideox-2b")) == repo


def test_download_hint_keeps_to_the_diffusers_folders(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert cli.main(["generate", "--model", "ltx-video", "--prompt", "a cat", "--out", str(tmp_path / "x.mp4"),
                     "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert 'hf download Lightricks/LTX-Video --include "model_index.json" "*/*.json"' in err


def test_device_errors_are_one_sentence(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for extra, says in ((["--device", "cuda"], "needs a CUDA GPU"), (["--device", "cpu", "--cpu-offload"], "has none")):
        rc = cli.main(["generate", "--model", "wan2.1-t2v-1.3b", "--prompt", "a cat", "--out", str(tmp_path / "x.mp4"),
                       *extra])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and says in err


@pytest.mark.parametrize("model,spec,expected", [
    ("wan2.1-t2v-1.3b", "cfg", {"method": "cfg", "scale": 5.0}),
    ("ltx-video", "apg", {"scale": 3.0}),
    ("modelscope-1.7b", "cfg:7", {"scale": 7.0}),
    ("wan2.1-t2v-1.3b", "samg", {"w_min": 3.3, "w_max": 8.0, "temporal_sigma": 1.0}),
])
def test_unspecified_scales_come_from_the_card(model, spec, expected):
    method = parse_spec(spec, card(model)).to_dict()
    assert {k: method[k] for k in expected if k != "method"} == {k: v for k, v in expected.items() if k != "method"}


def test_generate_writes_native_fps_and_the_field(tmp_path, capsys):
    import standins

    standins.write("modelscope-1.7b", tmp_path / "ms")
    rc = cli.main(["generate", "--model", "modelscope-1.7b", "--model-path", str(tmp_path / "ms"), "--prompt",
                   "a red fox runs", "--out", str(tmp_path / "v.mp4"), "--steps", "3", "--frames", "4",
                   "--height", "32", "--width", "32", "--device", "auto", "--save-scale-field"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "no CUDA device found; running on the CPU" in out.out or torch.cuda.is_available()
    assert media.read_video(tmp_path / "v.mp4").shape == (4, 32, 32, 3)
    assert media.read_video(tmp_path / "v_field.mp4").shape[0] == 4
    import imageio.v3 as iio
    assert iio.immeta(tmp_path / "v.mp4")["fps"] == 8  # the card's native frame rate


def test_unknown_model_lists_registry(capsys):
    assert cli.main(["generate", "--model", "sora", "--prompt", "x", "--out", "x.mp4"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'sora'; available: " in err and all(name in err for name in cards())
