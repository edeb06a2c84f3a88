"""The bundled model's training script: runs, checkpoints, resumes and exports a loadable pipeline."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from samg_video.demo import load_pipeline
from samg_video.demo.model import motion_word_velocities

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_demo_model.py"


def load_script():
    spec = importlib.util.spec_from_file_location("train_demo_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_timestep_shift_moves_mass_to_high_noise():
    train = load_script()
    uniform = train.sample_timesteps(np.random.default_rng(0), 20000, 1.0)
    assert np.array_equal(uniform, np.random.default_rng(0).integers(0, 1000, 20000))  # unchanged draws
    shifted = train.sample_timesteps(np.random.default_rng(0), 20000, 3.0)
    assert shifted.min() >= 0 and shifted.max() <= 999
    # t = s u / (1 + (s - 1) u): P(t > 500) = P(u > 1 / (s + 1)) = 0.75 for s = 3
    assert abs((shifted > 499.5).mean() - 0.75) < 0.01 and abs((uniform > 499.5).mean() - 0.5) < 0.01


def test_train_checkpoint_resume_export(tmp_path):
    train = load_script()
    args = ["--run-dir", str(tmp_path / "run"), "--out", str(tmp_path / "model"), "--pool", "6", "--batch", "2",
            "--ckpt-every", "1", "--temporal-attention", "--frame-embedding", "--noise-frame-share", "0.5",
            "--timestep-shift", "3", "--motion-align", "--two-object-prob", "0.5", "--velocity-loss", "0.5",
            "--spatial-attention"]
    train.main(args + ["--steps", "2"])
    meta = json.loads((tmp_path / "model" / "training.json").read_text())
    assert meta["steps"] == 2 and meta["noise_frame_share"] == 0.5 and meta["two_object_prob"] == 0.5
    assert meta["velocity_detach"] is False
    train.main(args + ["--steps", "3", "--velocity-detach"])  # resumes from step 2, runs one more (head detached)
    with pytest.raises(SystemExit):  # the auxiliary loss needs the head it trains
        train.parse_args(["--velocity-loss", "0.1"])
    with pytest.raises(SystemExit):  # a detached head needs its own loss
        train.parse_args(["--motion-align", "--velocity-detach"])
    meta = json.loads((tmp_path / "model" / "training.json").read_text())
    assert meta["steps"] == 3 and meta["velocity_detach"] is True
    pipe = load_pipeline(tmp_path / "model")
    assert pipe.unet.config.temporal_attention and pipe.unet.config.noise_frame_share == 0.5
    assert pipe.unet.config.motion_align and pipe.unet.config.spatial_attention
    velocities = motion_word_velocities(pipe.unet, pipe.text_encoder, pipe.tokenizer)
    assert sorted(velocities) == sorted(["left", "right", "up", "down", "still"])
    assert all(len(v) == 2 and max(map(abs, v)) <= pipe.unet.config.max_speed for v in velocities.values())
    out = pipe("a red circle moving left", num_inference_steps=2, guidance_scale=2.0,
               generator=torch.Generator().manual_seed(0), progress=False)
    assert out.frames.shape == (1, 8, 32, 32, 3) and np.isfinite(out.frames).all()


def test_measured_velocity_recovers_the_rendered_motion():
    """The auxiliary loss's target: a rendered clip's foreground centroid moves at SPEED px/frame in the
    direction of its motion word (x right, y down), and not at all when standing still."""
    from samg_video.demo import world

    train = load_script()
    rng = np.random.default_rng(0)
    for motion in world.MOTIONS:
        for shape in world.SHAPES:
            clip = (world.render([world.place("cyan", shape, motion, rng)]).numpy() * 255).round().astype(np.uint8)
            v = train.measured_velocity(clip[None])[0]
            want = world.SPEED * np.array(world.VELOCITY[motion], dtype=float)
            assert np.abs(v - want).max() < 0.05, (motion, shape, v)
