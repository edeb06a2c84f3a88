"""A run's settings: one object the command line, a sweep config and the Python API build."""

import pytest

from samg_video.settings import LIMITS, RunSettings


def test_the_command_line_and_a_sweep_config_give_the_same_settings(tmp_path):
    from samg_video.cli import build_parser
    from samg_video.sweep import load_sweep

    flags = ["--model", "demo", "--frames", "9", "--steps", "3", "--device", "cpu", "--dtype", "float32"]
    args = build_parser().parse_args(["generate", "--prompt", "a red circle moving left", "--out", "x.mp4", *flags])
    config = tmp_path / "s.yaml"
    config.write_text("model: demo\nframes: 9\nsteps: 3\ndevice: cpu\ndtype: float32\nseeds: [0]\n"
                      "methods: [cfg:2]\nprompts: [a red circle moving left]\n")
    from_sweep = RunSettings.from_sweep_config(load_sweep(config))
    assert RunSettings.from_args(args) == from_sweep
    assert from_sweep.to_dict() | {"frames": 9, "steps": 3} == RunSettings(
        model="demo", frames=9, steps=3, device="cpu", dtype="float32").to_dict()


@pytest.mark.parametrize("values, says", [
    ({"frames": 0}, "frames must be a whole number from 1 to 1025, got 0"),
    ({"steps": LIMITS["steps"] + 1}, "steps must be a whole number from 1 to 1000"),
    ({"height": True}, "height must be a whole number"),
    ({"dtype": "float8"}, "dtype must be one of float32, float16, bfloat16"),
    ({"cpu_offload": "yes"}, "cpu_offload must be true or false"),
    ({"model_path": 3}, "model_path must be text"),
])
def test_every_wrong_value_is_one_sentence_in_the_words_of_where_it_came_from(values, says):
    with pytest.raises(ValueError, match=f"^--{says.split()[0].replace('_', '-')}"):
        RunSettings(**values)
    with pytest.raises(ValueError, match=f"^s.yaml: {says}"):
        RunSettings.from_sweep_config(values, "s.yaml")


def test_a_sweeps_default_dtype_is_the_cards_and_load_target_takes_settings_or_values():
    assert RunSettings.from_sweep_config({"dtype": "default"}).dtype is None
    from samg_video.generate import load_target

    target = load_target(RunSettings(steps=2, device="cpu"), frames=5)
    assert target.kwargs["num_inference_steps"] == 2 and target.kwargs["num_frames"] == 5
    assert load_target(model="demo", device="cpu").kwargs["num_inference_steps"] == target.card["steps"]
