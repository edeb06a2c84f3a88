"""The bundled model's trainer: its defaults are the first stage of the shipped recipe; it runs, checkpoints,
resumes exactly and exports a loadable pipeline."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from samg_video.demo import load_pipeline
from samg_video.demo.model import motion_word_velocities
from samg_video.demo.pipeline import DEFAULT_MODEL_DIR
from samg_video.demo import train


def test_defaults_are_the_shipped_recipe():
    """The shipped weights record every training stage with its command: the trainer's defaults
    are the first (from scratch), each recorded command parses to the settings recorded for its
    stage, the last stage is the one whose settings training.json holds, and the shipped
    U-Net is the default one with its recorded number of slots."""
    record = json.loads((DEFAULT_MODEL_DIR / "training.json").read_text())
    stages = record["stages"]
    defaults = train.parse_settings([])
    for stage in stages:
        settings = train.parse_settings(stage["command"].split()[2:])
        assert settings.lr == stage["lr"] and settings.two_object_prob == stage["two_object_prob"], stage["stage"]
        assert settings.steps == stage["planned_steps"] >= stage["steps"], stage["stage"]
        assert stage["minutes"] <= settings.max_minutes + 0.1, stage["stage"]
        assert (settings.init is None) == (stage is stages[0]), stage["stage"]
    first = train.parse_settings(stages[0]["command"].split()[2:])
    for key in ("batch", "lr", "velocity_loss", "uncond_prob", "pool", "two_object_prob", "seed", "slots", "steps"):
        assert getattr(defaults, key) == getattr(first, key), key
    last = train.parse_settings(stages[-1]["command"].split()[2:])
    for key in ("batch", "lr", "velocity_loss", "uncond_prob", "pool", "two_object_prob", "seed"):
        assert getattr(last, key) == record[key], key
    assert last.version == record["version"] and stages[-1]["steps"] == record["steps"]
    assert stages[-1]["unet_sha256"] == record["sha256"]["unet/diffusion_pytorch_model.safetensors"]
    assert record["text_encoder"] == "frozen at init"
    from samg_video.demo.model import TinyVideoUNet

    config = {k: v for k, v in TinyVideoUNet(slots=last.slots).config.items() if not k.startswith("_")}
    assert config == record["architecture"]


def run_settings(tmp_path, **changes):
    return dataclasses.replace(train.TrainSettings(), run_dir=str(tmp_path / "run"), out=str(tmp_path / "model"),
                               pool=6, batch=2, ckpt_every=1, two_object_prob=0.5, velocity_loss=0.5, **changes)


def test_train_checkpoint_resume_export(tmp_path):
    """Two steps, then a resumed third, give the same weights as three steps in one go."""
    train.train(run_settings(tmp_path, steps=3, stop_step=2))
    meta = json.loads((tmp_path / "model" / "training.json").read_text())
    assert meta["steps"] == 2 and meta["two_object_prob"] == 0.5 and meta["version"] == "dev"
    resumed = train.train(run_settings(tmp_path, steps=3))
    assert resumed.count == 3
    straight = train.train(run_settings(tmp_path / "b", steps=3))
    for (name, a), b in zip(resumed.unet.state_dict().items(), straight.unet.state_dict().values()):
        assert torch.equal(a, b), name
    import hashlib

    meta = json.loads((tmp_path / "model" / "training.json").read_text())
    for name, digest in meta["sha256"].items():
        assert hashlib.sha256((tmp_path / "model" / name).read_bytes()).hexdigest() == digest
    pipe = load_pipeline(tmp_path / "model")
    velocities = motion_word_velocities(pipe.unet, pipe.text_encoder, pipe.tokenizer)
    assert sorted(velocities) == sorted(["left", "right", "up", "down", "still"])
    assert all(len(v) == 2 and max(map(abs, v)) <= pipe.unet.config.max_speed for v in velocities.values())
    out = pipe("a red circle moving left", num_inference_steps=2, guidance_scale=2.0,
               generator=torch.Generator().manual_seed(0))
    assert out.frames.shape == (1, 8, 32, 32, 3) and np.isfinite(out.frames).all()


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path, capsys):
    """A run folder's checkpoint.pt whose pickle calls a command when loaded (`__reduce__`): the trainer
    reads checkpoints as data only, so the command never runs; one sentence, exit 2."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(pickle.dumps({"unet": Payload()}))
    argv = ["--run-dir", str(run), "--out", str(tmp_path / "model"), "--steps", "1", "--pool", "6", "--batch", "2"]
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    assert exit_info.value.code == 2 and not marker.exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the bar of the clips it rendered first
    assert err.startswith("samg-video-train: error: ") and "is not a checkpoint of this trainer" in err
    assert "nothing in it ran" in err
    torch.save({"unet": {}}, run / "checkpoint.pt")  # data, but not this trainer's
    with pytest.raises(SystemExit):
        train.main(argv)
    assert "lacks the weights" in capsys.readouterr().err


def test_phrase_velocities_are_the_rendered_motion():
    """The velocity head's targets: each object's foreground centroid in a rendered clip moves at
    the velocity its motion word means (x right, y down), and not at all when standing still."""
    from samg_video.demo import world

    rng = np.random.default_rng(0)
    for motion in world.MOTIONS:
        for shape in world.SHAPES:
            spec = world.place("cyan", shape, motion, rng)
            clip = world.render([spec]).numpy().max(-1) > 0.5  # F H W foreground
            t = np.arange(clip.shape[0]) - (clip.shape[0] - 1) / 2
            cx = np.array([np.nonzero(f)[1].mean() for f in clip])
            cy = np.array([np.nonzero(f)[0].mean() for f in clip])
            measured = np.array([(cx * t).sum(), (cy * t).sum()]) / (t * t).sum()
            want, present = train.phrase_velocities([world.prompt_of([spec])], slots=2)
            assert present[0].tolist() == [True, False]
            assert np.abs(measured - want[0, 0].numpy()).max() < 0.05, (motion, shape, measured)
    v, present = train.phrase_velocities(["a red circle moving left and a blue square moving down"], slots=2)
    assert present[0].tolist() == [True, True]
    assert not train.phrase_velocities(["a red circle moving left and a blue square moving down"])[1].any()
    assert v[0].tolist() == [[-world.SPEED, 0.0], [0.0, world.SPEED]]
