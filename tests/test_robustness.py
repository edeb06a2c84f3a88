"""Bad input gets one clear line and exit code 2, never a traceback, and loses nothing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from samg_video import cli, guidance, media, metrics
from samg_video.manifest import read_manifest

PROMPT = "a red circle moving left"


def one_line_error(capsys, rc, *fragments):
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


# --- guidance configs ------------------------------------------------------------------------

@pytest.mark.parametrize("name,params,match", [
    ("samg", {"w_min": [1]}, "w_min must be a number"),
    ("samg", {"w_min": math.nan}, "w_min must be finite"),
    ("samg", {"w_min": True}, "w_min must be a number"),
    ("samg", {"spatial_sigma": math.inf}, "spatial_sigma must be finite"),
    ("samg", {"quantiles": 5}, "quantiles must be a pair"),
    ("samg", {"normalize": 3}, "normalize must be text"),
    ("cfg", {"scale": "7.5"}, "scale must be a number"),
    ("apg", {"eta": -3}, "eta must be >= 0"),
    ("cfg_zero_star", {"zero_init_steps": 1.5}, "zero_init_steps must be an integer"),
])
def test_bad_parameters_are_refused_at_creation(name, params, match):
    with pytest.raises(ValueError, match=match):
        guidance.create(name, **params)


@pytest.mark.parametrize("params", [{"bound": 1.0}, {"quantiles": (0.01, 0.99)}, {}])
def test_empty_batch_is_a_clear_error(params):
    empty = torch.zeros(0, 4, 2, 3, 3)
    with pytest.raises(ValueError, match="batch size 0"):
        guidance.create("samg", **params)(empty, empty, step=0, num_steps=2)


def test_float16_overflow_is_caught():
    u = torch.full((1, 2, 1, 2, 2), 1000.0, dtype=torch.float16)
    c = torch.full((1, 2, 1, 2, 2), 30000.0, dtype=torch.float16)  # u + 9 (c - u) ~ 2.6e5 > 65504
    with pytest.raises(ValueError, match="overflowed to NaN or Inf|exceeds the range of torch.float16"):
        guidance.create("cfg", scale=9.0)(u, c, step=0, num_steps=1)
    guidance.create("cfg", scale=9.0)(u, c, step=0, num_steps=1, dtype=torch.float32)  # float32 holds it
    # rescale combines in float32 and would overflow only in the final cast to float16
    with pytest.raises(ValueError, match="exceeds the range of torch.float16"):
        guidance.create("rescale", scale=9.0, phi=0.0)(u, c, step=0, num_steps=1)


# --- pipelines -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_pipe():
    from closed_form import closed_form_pipeline

    return closed_form_pipeline()


def test_a_pipeline_takes_one_method_at_a_time(demo_pipe):
    from samg_video.pipelines import apply

    with apply(demo_pipe, "samg"):
        with pytest.raises(ValueError, match="already guided by 'samg'"):
            apply(demo_pipe, "cfg", scale=3.0)
    with apply(demo_pipe, "cfg", scale=3.0) as handle:  # free again after removal
        assert handle.active
    assert "set_timesteps" not in vars(demo_pipe.scheduler)


def test_two_equal_prompts_without_cfg_are_not_mistaken_for_cfg(demo_pipe):
    """guidance_scale 1 with two identical prompts and latents gives two equal halves; the
    pipeline's own flag says CFG is off, so the hook refuses instead of blending them."""
    from samg_video.pipelines import apply

    latents = torch.randn(1, 3, 4, 32, 32).repeat(2, 1, 1, 1, 1)
    with apply(demo_pipe, "samg"):
        with pytest.raises(ValueError, match="not running classifier-free guidance"):
            demo_pipe([PROMPT, PROMPT], latents=latents, num_frames=4, num_inference_steps=2, guidance_scale=1.0)


# --- metrics and video input ---------------------------------------------------------------

def test_value_range_is_enforced_and_explicit():
    rng = np.random.default_rng(0)
    clip8 = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    base = metrics.compute(clip8, metrics=["flicker"])["flicker"]
    for bad, found in ((clip8.astype(np.float32), "[0, 255]"), (clip8.astype(np.int64), "int64"),
                       (clip8.astype(np.float32) / 127.5 - 1, "[-1, ")):
        with pytest.raises(ValueError, match="Frames must be uint8, or floats in"):
            metrics.compute(bad, metrics=["flicker"])
        try:
            metrics.compute(bad, metrics=["flicker"])
        except ValueError as err:
            assert found in str(err)
    assert metrics.compute(clip8.astype(np.float32), metrics=["flicker"], value_range=(0, 255))["flicker"] == base
    signed = clip8.astype(np.float64) / 127.5 - 1
    assert metrics.compute(signed, metrics=["flicker"], value_range=(-1, 1))["flicker"] == pytest.approx(base, abs=1e-9)


def test_frame_folders_grey_mixed_and_not_regular(tmp_path):
    import imageio.v3 as iio

    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(3):
        iio.imwrite(grey / f"f{i}.png", np.full((12, 14), 40 * i, np.uint8))
    frames = media.read_video(grey)
    assert frames.shape == (3, 12, 14, 3) and (frames[2] == 80).all()
    assert metrics.compute(grey, metrics=["flicker", "saturation"])["frames"] == 3
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    iio.imwrite(mixed / "a.png", np.zeros((12, 14, 3), np.uint8))
    iio.imwrite(mixed / "b.png", np.zeros((10, 14, 3), np.uint8))
    with pytest.raises(ValueError, match="a.png is 14x12, b.png is 14x10"):
        metrics.compute(mixed)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        media.read_video(fifo)
    (tmp_path / "withfifo").mkdir()
    iio.imwrite(tmp_path / "withfifo" / "a.png", np.zeros((12, 14, 3), np.uint8))
    os.mkfifo(tmp_path / "withfifo" / "b.png")
    with pytest.raises(ValueError, match="b.png is not a regular file"):
        metrics.compute(tmp_path / "withfifo")


@pytest.mark.parametrize("ext", ["avi", "webm"])
@pytest.mark.parametrize("decoder", ["ffmpeg", "decord"])
def test_truncated_video_is_an_error_not_a_score(ext, decoder, tmp_path):
    clip = np.random.default_rng(0).random((48, 32, 32, 3)).astype(np.float32)
    whole = media.write_video(clip, tmp_path / f"whole.{ext}", fps=8)
    assert metrics.compute(whole, metrics=["flicker"], decoder=decoder)["frames"] == 48
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[:len(data) // 3])
    with pytest.raises(ValueError, match="truncated or damaged"):
        metrics.compute(cut, metrics=["flicker"], decoder=decoder)


def test_eval_records_a_bad_file_and_exits_1(tmp_path, capsys):
    good = media.write_video(np.zeros((4, 16, 16, 3), np.float32), tmp_path / "good.gif")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    assert cli.main(["eval", str(good), str(bad), "--metrics", "flicker", "--json", str(tmp_path / "r.json")]) == 1
    rows = json.loads((tmp_path / "r.json").read_text())["videos"]
    assert "flicker" in rows[0] and "Cannot decode" in rows[1]["error"]


def test_eval_checks_its_outputs_before_the_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "evaluate_paths", lambda *a, **k: pytest.fail("evaluated before checking outputs"))
    (tmp_path / "file").write_text("x")
    rc = cli.main(["eval", "whatever.mp4", "--json", str(tmp_path / "file" / "r.json")])
    one_line_error(capsys, rc, "is not a writable folder")


# --- generate --------------------------------------------------------------------------------

def forbid_loading(monkeypatch):
    """Fail the test if a command gets as far as loading a model."""
    import samg_video.generate as generate

    monkeypatch.setattr(generate, "load_target", lambda *a, **k: pytest.fail("loaded a model before checking"))


@pytest.fixture
def no_model(monkeypatch):
    forbid_loading(monkeypatch)


@pytest.mark.parametrize("argv,fragment", [
    (["--steps", "0"], "--steps must be from 1 to 1000"),
    (["--steps", "-1"], "--steps must be from 1 to 1000"),
    (["--steps", "1001"], "--steps must be from 1 to 1000"),
    (["--frames", "0"], "--frames must be from 1 to 1025"),
    (["--frames", "-3"], "--frames must be from 1 to 1025"),
    (["--frames", "100000000"], "--frames must be from 1 to 1025"),
    (["--fps", "0"], "--fps must be from 1 to 240"),
    (["--upscale", "100000"], "--upscale must be from 1 to 64"),
    (["--seed", str(10**24)], "--seed must be from 0 to 2^63 - 1"),
    (["--temporal-sigma", "1e12"], "temporal_sigma must be in [0.0, 1000.0]"),
    (["--method", "cfg", "--config", "configs/guidance/samg.yaml"], "disagree"),
    (["--format", "gif"], "--format gif does not match"),
    (["--format", "png"], "--format png does not match"),
    (["--save-scale-field", "{out}"], "same file"),
    (["--set", "w_min=abc"], "w_min must be a number"),
    (["--set", "quantiles=5"], "quantiles must be a pair"),
    (["--set", "w_min=true"], "w_min must be a number"),
    (["--w-min", "nan"], "w_min must be a number, got 'nan'"),  # read as --set reads it: YAML's NaN is .nan
    (["--config", "configs"], "is not a file"),
    (["--config", "{bad_yaml}"], "is not valid YAML"),
])
def test_generate_refuses_bad_input_before_loading(argv, fragment, tmp_path, capsys, no_model, repo_root,
                                                   monkeypatch):
    monkeypatch.chdir(repo_root)
    out = tmp_path / "x.mp4"
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("method: [samg\n")
    argv = [a.format(out=out, bad_yaml=bad_yaml) for a in argv]
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(out), *argv])
    one_line_error(capsys, rc, fragment)
    assert not out.exists()


def test_unwritable_output_fails_before_loading(tmp_path, capsys, no_model):
    (tmp_path / "file").write_text("x")
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path / "file" / "x.mp4")])
    one_line_error(capsys, rc, "is not a writable folder")


def test_an_occupied_folder_is_refused_before_loading(tmp_path, capsys, no_model):
    """--out an existing folder that holds anything but PNG frames: refused before the model loads."""
    (tmp_path / "notes.txt").write_text("mine")
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path)])
    one_line_error(capsys, rc, "holds other files (notes.txt)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_set_reads_numbers_yaml_would_leave_as_text(tmp_path, capsys):
    rc = cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path / "x.gif"), "--steps", "2", "--method", "samg",
                   "--set", "bound=1e-3"])
    assert rc == 0, capsys.readouterr().err
    assert "\n  bound: 0.001\n" in capsys.readouterr().out


@pytest.mark.parametrize("spec,sentence", [
    ("every:3:4", "skip n must be an integer, got '3:4'"),  # YAML 1.1 read 3:4 as base 60: 184
    ("every:3,n=5", "skip n is given twice in 'every:3,n=5'"),
    ("adaptive:0.01,max_reuse=2,max_reuse=3", "max_reuse is given twice"),
    ("interval:-0.1-0.5", "got (-0.1, 0.5)"),  # the written bounds, not None
    ("every:" + "7" * 100_000, "(100000 characters) is out of any setting's range"),  # not inf
])
def test_skip_specs_read_numbers_as_written_and_each_setting_once(spec, sentence):
    from samg_video.guidance.skip import parse_policy

    with pytest.raises(ValueError) as err:
        parse_policy(spec)
    assert sentence in str(err.value) and len(str(err.value)) < 300


def test_numbers_read_as_yaml_1_2_and_python_write_them(tmp_path):
    """YAML 1.1 (PyYAML's default) reads 010 as octal 8, 1:30 as base-60 90 and 0x10 as 16; the one
    YAML reader and the one KEY=VALUE parser read decimal numbers only, and a repeated key is refused."""
    from samg_video.guidance.options import key_values
    from samg_video.sweep import load_sweep

    assert key_values(["w_min=010", "w_max=1:30", "bound=0x10", "scale=1e-3"], "--set", "w_min=1") == {
        "w_min": 10, "w_max": "1:30", "bound": "0x10", "scale": 0.001}
    with pytest.raises(ValueError, match="w_min is given twice"):
        key_values(["w_min=1", "w_min=2"], "--set", "w_min=1")
    with pytest.raises(ValueError, match="w_max must be"):
        guidance.create("samg", **key_values(["w_max=1:30"], "--set", "w_min=1"))
    path = tmp_path / "s.yaml"
    path.write_text("methods: [cfg:2]\nprompts: [a red circle moving left]\nseeds: [010]\n")
    assert load_sweep(path)["seeds"] == [10]
    path.write_text("methods: [cfg:2]\nprompts: [a red circle moving left]\nseeds: [0]\nsteps: 1:30\n")
    with pytest.raises(ValueError, match="steps must be a whole number"):
        load_sweep(path)


def test_a_large_yaml_file_is_checked_for_repeated_keys_in_one_pass(tmp_path):
    """105,000 distinct keys (under the 1 MiB cap) parse in seconds: the repeated-key check is linear
    (comparing each key with every earlier one took over 15 minutes); one repeated key among them is
    found; nesting too deep to read is one sentence."""
    import time

    from samg_video.yamlfile import read_yaml

    path = tmp_path / "big.yaml"
    path.write_text("\n".join(f"{i}: 0" for i in range(105_000)) + "\n")
    start = time.perf_counter()
    assert len(read_yaml(path, "Sweep config")) == 105_000
    assert time.perf_counter() - start < 120  # quadratic: 5.5e9 comparisons
    path.write_text("\n".join(f"k{i}: 0" for i in range(50_000)) + "\nk17: 1\n")
    with pytest.raises(ValueError, match="the key 'k17' is given twice"):
        read_yaml(path, "Sweep config")
    path.write_text("a: " + "[" * 50_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_yaml(path, "Sweep config")


def test_case_and_punctuation_do_not_change_the_prompt(tmp_path):
    """'A RED circle moving LEFT!' is the bundled model's 'a red circle moving left': accepted, scored
    and generated as it (the same frames from the same seed)."""
    from samg_video.generate import generate_clip, load_target

    target = load_target(model="demo", steps=2)
    loud = generate_clip(target, "A RED circle moving LEFT!", guidance.create("cfg", scale=2.0), seed=3)
    plain = generate_clip(target, "a red circle moving left", guidance.create("cfg", scale=2.0), seed=3)
    assert np.array_equal(loud.clip, plain.clip)
    out = str(tmp_path / "x.gif")
    assert cli.main(["generate", "--prompt", "A RED circle moving LEFT!", "--out", out, "--steps", "2"]) == 0


def test_unknown_word_is_reported_before_heavy_imports(repo_root):
    code = ("import sys; from samg_video import cli; "
            "rc = cli.main(['generate', '--prompt', 'a purple circle moving left', '--out', 'x.mp4']); "
            "print(rc, 'diffusers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr
    assert "Unknown word 'purple'" in done.stderr


def test_more_objects_than_the_model_draws_is_one_line(tmp_path, capsys):
    prompt = "a red circle moving left and a blue square moving up and a green triangle standing still"
    rc = cli.main(["generate", "--prompt", prompt, "--out", str(tmp_path / "x.gif"), "--steps", "2"])
    one_line_error(capsys, rc, "This model draws at most 2 objects", "has 3")
    assert not (tmp_path / "x.gif").exists()


def test_a_prompt_longer_than_the_tokenizer_gets_a_note():
    """The note comes from the pipeline's own tokenizer limit (a one-slot bundled U-Net keeps
    16 tokens of the whole prompt)."""
    from samg_video.demo import load_pipeline
    from samg_video.demo.model import TinyVideoUNet
    from samg_video.arguments import prompt_notes

    pipe = load_pipeline()
    pipe.unet = TinyVideoUNet(slots=1)
    prompt = "a red circle moving left and a blue square moving up and a green triangle standing still"
    notes = prompt_notes(pipe, prompt, {})
    assert len(notes) == 1 and "tokens long but tokenizer keeps 16" in notes[0], notes
    assert prompt_notes(pipe, "a red circle moving left", {}) == []


def test_debug_shows_the_traceback(tmp_path, capsys):
    """--debug prints the whole traceback and keeps the exit code (2) the command has without it."""
    assert cli.main(["generate", "--prompt", PROMPT, "--out", str(tmp_path / "x.mp4"), "--steps", "0", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: --steps must be from 1 to 1000" in err


# --- sweeps ----------------------------------------------------------------------------------

def sweep_config(tmp_path, **extra) -> str:
    config = {"prompts": [PROMPT, "a green triangle moving up"], "seeds": [0], "steps": 2, "lpips": False,
              "methods": ["cfg:2", "samg:1-3"], **extra}
    path = tmp_path / f"sweep{len(extra)}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_rerun_with_other_settings_stops_unless_forced(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", run]) == 0
    capsys.readouterr()
    rc = cli.main(["sweep", sweep_config(tmp_path), "--out", run, "--steps", "3"])
    one_line_error(capsys, rc, "holds a sweep with other settings (steps 2 -> 3)", "--force")
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", run, "--steps", "3", "--force"]) == 0
    rows = read_manifest(run)
    assert sorted(r["setting"]["steps"] for r in rows) == [2, 2, 2, 2, 3, 3, 3, 3]
    assert cli.main(["report", run]) == 0
    md = (tmp_path / "run" / "report.md").read_text()
    assert "4 items recorded of 4 planned" in md and "4 items of other settings" in md


def test_report_covers_only_the_planned_methods(tmp_path):
    run = str(tmp_path / "run")
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", run]) == 0
    narrower = tmp_path / "narrower.yaml"
    config = yaml.safe_load(Path(sweep_config(tmp_path)).read_text())
    narrower.write_text(yaml.safe_dump({**config, "methods": ["cfg:2"]}))
    assert cli.main(["sweep", str(narrower), "--out", run]) == 0
    assert len(read_manifest(run)) == 4
    assert cli.main(["report", run]) == 0
    md = (tmp_path / "run" / "report.md").read_text()
    assert "2 items recorded of 2 planned" in md and "2 items of other settings or methods" in md
    assert "samg" not in md.split("## ")[1]


def test_a_bad_record_is_left_out_with_a_note_and_no_file_outside_the_run_is_shown(tmp_path, capsys):
    """Two of four records edited: one names /etc/passwd as its input image (a file the item was not
    made from: its content does not give the record's id), one carries a skip policy with an unknown
    setting. The report leaves both out, says so, and shows no image; the rest is reported."""
    run = tmp_path / "run"
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", str(run)]) == 0
    shard = run / "manifest.rank0.jsonl"
    rows = [json.loads(line) for line in shard.read_text().splitlines()]
    planted = {**rows[0], "image": "/etc/passwd"}
    unknown = {**rows[1], "method": {**rows[1]["method"], "skip": {"policy": "every", "n": 3, "bogus": 1}}}
    with open(shard, "a") as fh:
        fh.write(json.dumps(planted) + "\n" + json.dumps(unknown) + "\n")
    assert cli.main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0, capsys.readouterr().err
    md = (tmp_path / "rep" / "report.md").read_text()
    assert f"record {rows[0]['id']} is left out: its image '/etc/passwd' is not the input" in md
    assert f"record {rows[1]['id']} is left out: Unknown setting 'bogus' for skip policy 'every'" in md
    assert "2 items recorded of 4 planned" in md
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "input image" not in page and not list((tmp_path / "rep").rglob("*passwd*"))


def test_a_pickle_or_torchscript_as_raft_weights_is_one_sentence_and_a_planted_lpips_cache_is_rebuilt(
        tmp_path, capsys, monkeypatch):
    """A pickle whose loading would run a command, and a TorchScript archive, given as --raft-weights:
    one sentence naming the file, exit 2, the command never run. The same pickle planted as the LPIPS
    cache is not loaded: the weights are converted again and the cache replaced."""
    import pickle

    import torch

    from samg_video.metrics import lpips_temporal

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    planted = tmp_path / "raft.pth"
    planted.write_bytes(pickle.dumps({"w": Payload()}))
    scripted = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), scripted)
    clip = tmp_path / "c.mp4"
    media.write_video(np.zeros((4, 32, 32, 3), np.uint8), clip)
    for weights in (planted, scripted):
        rc = cli.main(["eval", str(clip), "--flow", "raft", "--raft-weights", str(weights), "--metrics", "warp_error"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1, err
        assert f"{weights} is not torchvision's RAFT-large weights file" in err
    assert not marker.exists()
    monkeypatch.setattr(lpips_temporal, "cache_dir", lambda: tmp_path)
    lpips_temporal.lpips_model.cache_clear()
    cache = tmp_path / "alex_v0.1.pt"
    cache.write_bytes(pickle.dumps((Payload(), [])))
    model = lpips_temporal.lpips_model("alex")
    lpips_temporal.lpips_model.cache_clear()
    assert not marker.exists() and lpips_temporal.read_cache(cache) is not None and model is not None


def test_report_pairs_against_a_chosen_reference(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", run]) == 0
    assert cli.main(["report", run, "--reference", "samg:1-3", "--out", str(tmp_path / "by_samg")]) == 0
    assert cli.main(["report", run, "--out", str(tmp_path / "by_cfg")]) == 0
    by_samg, by_cfg = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("by_samg", "by_cfg"))
    assert (by_samg["reference"], by_cfg["reference"]) == ("samg 1-3", "cfg 2")
    forward, backward = by_cfg["paired"]["samg 1-3"]["out_of_range"], by_samg["paired"]["cfg 2"]["out_of_range"]
    assert forward[0] != 0 and backward[0] == pytest.approx(-forward[0]) and backward[1] == pytest.approx(forward[1])
    assert "Paired against samg 1-3" in (tmp_path / "by_samg" / "report.md").read_text()
    capsys.readouterr()
    rc = cli.main(["report", run, "--reference", "cfg:9", "--out", str(tmp_path / "none")])
    one_line_error(capsys, rc, "'cfg:9' (cfg 9) is not among its methods")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_a_sweep_on_a_missing_gpu_writes_nothing(tmp_path, capsys, no_model):
    run = tmp_path / "run"
    rc = cli.main(["sweep", sweep_config(tmp_path), "--out", str(run), "--device", "cuda"])
    one_line_error(capsys, rc, "--device cuda needs a CUDA GPU")
    assert not run.exists()


def test_a_manifest_that_cannot_take_lines_is_refused_before_work(tmp_path, capsys, monkeypatch):
    """An immutable shard (chattr +i where the file system allows it; else a folder in its place,
    which cannot be appended to either) would lose every result: refused before the model loads,
    the recorded sweep untouched."""
    run = tmp_path / "run"
    assert cli.main(["sweep", sweep_config(tmp_path), "--steps", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    forbid_loading(monkeypatch)
    shard, recorded = run / "manifest.rank0.jsonl", (run / "sweep.json").read_text()
    immutable = subprocess.run(["chattr", "+i", str(shard)], capture_output=True).returncode == 0
    if not immutable:
        shard.rename(run / "kept.jsonl")
        shard.mkdir()
    try:
        rc = cli.main(["sweep", sweep_config(tmp_path), "--out", str(run), "--force"])
        one_line_error(capsys, rc, f"Cannot record results in {shard}")
        assert (run / "sweep.json").read_text() == recorded
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(shard)], capture_output=True)


def test_a_second_sweep_on_the_same_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    code = ("import sys, time; from pathlib import Path; from samg_video.manifest import SweepLock\n"
            "with SweepLock(Path(sys.argv[1]), 0):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        rc = cli.main(["sweep", sweep_config(tmp_path), "--out", str(run)])
        one_line_error(capsys, rc, f"is being written by process {holder.pid}")
    finally:
        holder.kill()  # killed while holding: the kernel releases its lock, its file stays behind
        holder.wait()
    assert (run / "manifest.rank0.lock").exists()
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", str(run)]) == 0  # the dead holder's lock is taken
    assert not (run / "manifest.rank0.lock").exists() and len(read_manifest(run)) == 4


def test_a_lock_file_without_a_holder_is_taken_and_racers_exclude_each_other(tmp_path):
    """An empty or half-written lock file (its writer killed) is not a lock; of two processes racing
    for the same shard, exactly one holds it."""
    from samg_video.manifest import SweepLock

    (tmp_path / "manifest.rank0.lock").write_text("")
    with SweepLock(tmp_path, 0):
        with pytest.raises(ValueError, match="is being written by process"):
            SweepLock(tmp_path, 0).__enter__()
    code = ("import sys, time; from pathlib import Path; from samg_video.manifest import SweepLock\n"
            "try:\n    lock = SweepLock(Path(sys.argv[1]), 0).__enter__()\nexcept ValueError:\n    print('refused')\n"
            "else:\n    print('held', flush=True); time.sleep(10)")
    racers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
              for _ in range(4)]
    outcomes = sorted(r.communicate(timeout=120)[0].strip() for r in racers)
    assert outcomes == ["held", "refused", "refused", "refused"]


def test_junk_manifest_lines_are_ignored_and_compacted(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", str(run)]) == 0
    shard = run / "manifest.rank0.jsonl"
    good = shard.read_text()
    shard.write_text(good + '{"foo": 1}\n[1, 2]\nnull\n{"id": "x"}\n' + good.splitlines()[0][:30])
    assert len(read_manifest(run)) == 4
    assert cli.main(["report", str(run)]) == 0
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", str(run)]) == 0  # resume compacts the shard
    assert shard.read_text() == good


def test_failed_items_keep_the_exit_code_at_1(tmp_path, capsys):
    path = sweep_config(tmp_path, prompts=[PROMPT, "a purple blob"])
    run = str(tmp_path / "run")
    assert cli.main(["sweep", path, "--out", run]) == 1
    assert cli.main(["sweep", path, "--out", run]) == 1  # nothing new ran, but failed items remain
    assert "recorded as failed earlier" in capsys.readouterr().out
    assert cli.main(["report", run]) == 0
    summary = (tmp_path / "run" / "summary.json").read_text()
    json.loads(summary, parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))
    assert json.loads(summary)["failed"] == 2


def test_partial_sweep_report_says_what_is_missing(tmp_path):
    run = tmp_path / "run"
    assert cli.main(["sweep", sweep_config(tmp_path), "--out", str(run)]) == 0
    shard = run / "manifest.rank0.jsonl"
    shard.write_text("".join(shard.read_text().splitlines(keepends=True)[:2]))
    assert cli.main(["report", str(run)]) == 0
    assert "2 items recorded of 4 planned" in (run / "report.md").read_text()


def test_killed_anywhere_the_sweep_resumes_to_the_same_result(tmp_path, repo_root):
    """Fault injection: the process is ended (os._exit, as by a kill) at a fault point: mid
    manifest line, between a clip's temporary file and its rename, between heatmap and clip;
    each time the same command resumes. After 6+ kills of both kinds the manifest and clips equal an
    uninterrupted run's bit for bit, with two items per batch (a batch cut short is generated
    whole again, so no number sees another batch composition)."""
    config = sweep_config(tmp_path, batch=2)  # two prompts x cfg and samg: two batches of two items
    env = dict(os.environ, PYTHONPATH=str(repo_root))
    runner = subprocess.Popen([sys.executable, str(repo_root / "tests" / "fault_runner.py"), "serve"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def run(folder, fault=0):  # fault 0: never; each run a process of its own, forked by the runner
        runner.stdin.write(json.dumps({"fault": fault, "argv": ["sweep", config, "--out", str(folder)]}) + "\n")
        runner.stdin.flush()
        line = runner.stdout.readline()
        assert line, "the fault runner stopped"
        return int(line)

    assert run(tmp_path / "whole") == 0
    # each invocation killed at its k-th fault point, k = 1 (sweep.json) ... 7, over and over, each resuming
    # the last: every kind of point (sweep.json, a clip's or heatmap's rename, a manifest line) in every position
    kills = []
    for k in [*range(1, 8)] * 6:
        rc = run(tmp_path / "killed", fault=k)
        if rc == 0:
            break
        assert rc in (137, 143), rc
        kills.append(rc)
    assert len(kills) >= 6 and set(kills) == {137, 143}, kills  # renames and torn lines, many times
    assert run(tmp_path / "killed") == 0
    whole, killed = (read_manifest(tmp_path / name) for name in ("whole", "killed"))
    assert all(r.pop("seconds") > 0 for r in whole + killed)  # wall time: the one field that may differ
    assert whole == killed
    names = sorted(p.name for p in (tmp_path / "whole" / "clips").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "killed" / "clips").iterdir())  # no temporaries left
    for name in names:
        assert (tmp_path / "whole" / "clips" / name).read_bytes() == (tmp_path / "killed" / "clips" / name).read_bytes()
    runner.stdin.close()
    assert runner.wait(timeout=60) == 0


# --- nothing lost, nothing silently wrong: outputs, model folders, the metrics API -------------------


def test_an_output_never_replaces_an_input(tmp_path, capsys):
    video = media.write_video(np.zeros((4, 16, 16, 3), np.uint8), tmp_path / "v.mp4")
    before = video.read_bytes()
    for args in (["eval", str(video), "--csv", str(video)],
                 ["eval", str(video), "--json", str(tmp_path / "." / "v.mp4")],
                 ["eval", str(video), "--reference", str(video), "--json", str(video)]):
        rc = cli.main(args)
        one_line_error(capsys, rc, "would overwrite the input")
    assert video.read_bytes() == before
    preset = tmp_path / "my.yaml"
    preset.write_text("method: cfg\nscale: 2.0\n")
    rc = cli.main(["compare", "--prompt", PROMPT, "--methods", "cfg:2", str(preset), "--out", str(tmp_path / "c.gif"),
                   "--json", str(preset)])
    one_line_error(capsys, rc, "would overwrite the input")
    assert preset.read_text() == "method: cfg\nscale: 2.0\n"


def test_links_and_devices_are_never_replaced(tmp_path, capsys):
    target = tmp_path / "real.json"
    target.write_text("keep")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    video = media.write_video(np.zeros((4, 16, 16, 3), np.uint8), tmp_path / "v.gif")
    one_line_error(capsys, cli.main(["eval", str(video), "--json", str(link)]), "is a symbolic link")
    one_line_error(capsys, cli.main(["eval", str(video), "--json", "/dev/null"]), "is a device, pipe or socket")
    assert link.is_symlink() and target.read_text() == "keep" and Path("/dev/null").is_char_device()


def test_a_failed_encode_replaces_nothing_and_says_so(tmp_path, monkeypatch):
    good = media.write_video(np.zeros((4, 16, 16, 3), np.uint8), tmp_path / "x.mp4")
    before = good.read_bytes()

    # an encoder that stops early without an error of its own (as ffmpeg on a full disk): 2 of 8 frames
    monkeypatch.setattr(media, "_write_ffmpeg", lambda d, p, f, m, real=media._write_ffmpeg: real(d[:2], p, f, m))
    with pytest.raises(ValueError, match=r"holds 2 of 8 frames\)\. Nothing was replaced"):
        media.write_video(np.zeros((8, 16, 16, 3), np.uint8), good)
    assert good.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]


def test_a_full_disk_is_one_sentence_and_replaces_nothing(tmp_path):
    """On a 256 KB tmpfs (skipped where it cannot be mounted): a good clip stays, the failed one
    is reported in one line, no temporary is left."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        good = media.write_video(np.zeros((4, 16, 16, 3), np.uint8), disk / "x.mp4")
        before = good.read_bytes()
        noise = np.random.default_rng(0).integers(0, 256, (24, 256, 256, 3), dtype=np.uint8)
        with pytest.raises(ValueError, match="no space left on the device"):
            media.write_video(noise, good)
        assert good.read_bytes() == before and sorted(p.name for p in disk.iterdir()) == ["x.mp4"]
        with pytest.raises(ValueError, match="no space left on the device"):
            media.write_video(noise, disk / "frames")  # PNG frames: written whole or not at all
        assert sorted(p.name for p in disk.iterdir()) == ["x.mp4"]
        (disk / "fill").write_bytes(b"\0" * (disk_free(disk) - 4096))
        for out in ("x.mp4", "frames", "x.gif"):  # imageio's handle once printed "Exception ignored" for PNG / GIF
            run = subprocess.run([sys.executable, "-m", "samg_video.cli", "generate", "--prompt", PROMPT, "--steps",
                                  "1", "--frames", "16", "--out", str(disk / out)], capture_output=True, text=True)
            assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr  # no encoder log, no traceback
            assert "no space left on the device" in run.stderr and good.read_bytes() == before
        assert sorted(p.name for p in disk.iterdir()) == ["fill", "x.mp4"]
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def disk_free(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_frame_folders_are_swapped_whole(tmp_path):
    folder = media.write_video(np.zeros((16, 8, 8, 3), np.uint8), tmp_path / "frames")
    media.write_video(np.full((8, 8, 8, 3), 255, np.uint8), folder)
    assert len(list(folder.iterdir())) == 8 and media.read_video(folder).min() == 255
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds other files"):
        media.write_video(np.zeros((4, 8, 8, 3), np.uint8), folder)


def test_a_model_folder_never_runs_code(tmp_path):
    """A folder whose model_index.json names a module of its own, run as the working directory under
    `python -m` (which puts it on sys.path): refused with one line, the module never imported."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "evil_mod.py").write_text("from pathlib import Path\nPath('RAN').write_text('code ran')\n"
                                        "class AutoencoderKLWan: pass\n")
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "WanPipeline", "vae": ["evil_mod", "AutoencoderKLWan"],
        "transformer": ["diffusers", "WanTransformer3DModel"],
        "text_encoder": ["transformers", "UMT5EncoderModel"], "tokenizer": ["transformers", "AutoTokenizer"],
        "scheduler": ["diffusers", "UniPCMultistepScheduler"]}))
    done = subprocess.run([sys.executable, "-m", "samg_video.cli", "generate", "--model", "wan2.1-t2v-1.3b",
                           "--model-path", ".", "--dtype", "bfloat16", "--device", "cpu", "--prompt", "a fox",
                           "--out", str(tmp_path / "x.mp4")], cwd=folder, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(Path(cli.__file__).parents[1])))
    assert done.returncode == 2 and "names the library 'evil_mod'" in done.stderr, done.stderr
    assert not (folder / "RAN").exists()


@pytest.mark.parametrize("config,named", [
    ({"base_dim": 1_000_000}, "base_dim = 1000000 is beyond any real model's (a width of at most 65536)"),
    ({"num_attention_heads": 1000, "attention_head_dim": 1000},
     "num_attention_heads x attention_head_dim = 1000 x 1000"),
    ({"hidden_size": 1_000_000_000}, "hidden_size = 1000000000 is beyond"),
    ({"vision_config": {"intermediate_size": 10 ** 7}}, "vision_config.intermediate_size = 10000000 is beyond"),
])
def test_model_sizes_no_real_model_has_are_refused_before_anything_is_allocated(tmp_path, config, named):
    """A config whose widths would allocate terabytes (the VAE's base_dim, heads x head width, a DINO or
    CLIP folder's hidden size) is one sentence naming the file and key, for a model folder and for the
    VBench models' folders alike; nothing is built."""
    from samg_video.metrics import vbench
    from samg_video.pipelines.registry import check_configs

    (tmp_path / "vae").mkdir()
    (tmp_path / "model_index.json").write_text("{}")
    (tmp_path / "vae" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")) as err:
        check_configs(tmp_path)
    assert str(tmp_path / "vae" / "config.json") in str(err.value)
    for load in (vbench.load_dino, vbench.load_clip_vision):
        with pytest.raises(ValueError, match="is beyond any real model"):
            load(tmp_path / "vae")


def test_a_clip_whose_frame_size_changes_is_refused_and_no_frame_measures_nothing(monkeypatch):
    """A decoder that hands frames of another size midway (a stream whose resolution changes): refused
    in one sentence naming the frame, not measured at the first size; with size=(W, H) every frame is
    measured at that size. No frame: saturation and clipped pixels are None, not 0."""
    from samg_video import media as media_module

    def blocks(source, chunk, decoder, value_range):
        yield np.zeros((3, 16, 16, 3), np.uint8)
        yield np.zeros((2, 32, 16, 3), np.uint8)

    monkeypatch.setattr(media_module, "iter_frames", blocks)
    with pytest.raises(ValueError, match="frame 3 is 16x32 but the frames before it are 16x16"):
        metrics.compute("clip.mp4", metrics=["flicker"])
    assert metrics.compute("clip.mp4", metrics=["flicker"], size=(16, 16))["frames"] == 5
    monkeypatch.undo()
    empty = metrics.compute(np.zeros((0, 16, 16, 3), np.uint8))
    assert empty["frames"] == 0 and empty["saturation"] is None and empty["clipped_high"] is None


def test_a_long_clip_can_be_measured_in_part_with_its_frames_counted(tmp_path, capsys):
    """`eval --max-frames N` measures the first N frames (the row says so) and equals measuring a clip
    of those N frames; the frames are counted as they are decoded (the progress of a long clip)."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    counted = []
    part = metrics.compute(frames, metrics=["flicker", "warp_error"], max_frames=12, on_frames=counted.append)
    whole = metrics.compute(frames[:12], metrics=["flicker", "warp_error"])
    assert part["frames"] == 12 and part["flicker"] == whole["flicker"] and part["warp_error"] == whole["warp_error"]
    assert "first 12 frames" in part["frames_note"] and sum(counted) >= 12
    clip = tmp_path / "long.mp4"
    media.write_video(frames, clip)
    assert cli.main(["eval", str(clip), "--max-frames", "12", "--metrics", "flicker", "--json",
                     str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["videos"][0]["frames"] == 12
    assert cli.main(["eval", str(clip), "--max-frames", "1"]) == 2
    assert "--max-frames must be at least 2" in capsys.readouterr().err


def test_metrics_api_takes_what_its_docs_say():
    import torch

    clip = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    expected = metrics.compute(clip, metrics=["flicker"])["flicker"]
    for video in (torch.from_numpy(clip), torch.from_numpy(clip).permute(0, 3, 1, 2)):  # uint8 tensors, both layouts
        assert metrics.compute(video, metrics="flicker")["flicker"] == expected
    with pytest.raises(ValueError, match="finite"):
        metrics.compute(clip.astype(np.float32), metrics="flicker", value_range=(0, float("inf")))


def test_usage_errors_are_one_line_and_exit_2(capsys):
    for argv, message in ((["generate", "--steps", "abc", "--prompt", PROMPT, "--out", "x.mp4"], "invalid int value"),
                          (["eval", "x.mp4", "--metrics", "flickr"], "invalid choice: 'flickr'"),
                          (["eval", "x.mp4", "--flow-downscale", "0"], "--flow-downscale must be at least 1"),
                          # a prefix is no flag (argparse would run --frame 8 as --frames 8), and an unknown flag
                          # points to its command's help
                          (["generate", "--prompt", PROMPT, "--frame", "8", "--out", "x.mp4"],
                           "samg-video generate: error: unrecognized arguments: --frame 8 (see `samg-video generate"),
                          (["eval", "x.mp4", "--bogus"], "(see `samg-video eval --help`)")):
        with pytest.raises(SystemExit) as stop:
            code = cli.main(argv)
            raise SystemExit(code)
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert cli.main(["--debug", "generate", "--prompt", PROMPT, "--out", "x.gif", "--temporal-sigma", "-1"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_missing_weights_are_named_before_any_work(tmp_path, capsys, monkeypatch, no_model):
    """A registry model whose weights are not here: one sentence with the download command, from
    generate and from sweep, before the model's libraries load; the sweep writes nothing."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    rc = cli.main(["generate", "--model", "wan2.1-t2v-1.3b", "--prompt", "a fox", "--out", str(tmp_path / "x.mp4")])
    one_line_error(capsys, rc, "are not on this machine", "hf download Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
    config = tmp_path / "wan.yaml"
    config.write_text(yaml.safe_dump({"model": "wan2.1-t2v-1.3b", "model_path": str(tmp_path / "nowhere"),
                                      "prompts": ["a fox"], "seeds": [0], "methods": ["cfg:5"]}))
    rc = cli.main(["sweep", str(config), "--out", str(tmp_path / "run")])
    one_line_error(capsys, rc, "is not a folder")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("call,sentence", [
    (lambda pipe: __import__("samg_video").pipelines.apply(pipe, 42), "method must be a samg_video method object"),
    (lambda pipe: __import__("samg_video").pipelines.apply(pipe, object()),
     "method must be a samg_video method object"),
    (lambda pipe: __import__("samg_video").pipelines.apply(pipe, "samg", callback=5), "callback must be a function"),
    (lambda pipe: __import__("samg_video").pipelines.apply(pipe, "samg", experts={"transformer_2": 3}),
     r"experts\['transformer_2'\] must be"),
])
def test_apply_refuses_what_is_no_method_before_touching_the_pipeline(call, sentence):
    """A wrong method, callback or expert is one sentence from `apply` itself, and the pipeline keeps
    no handle: a later `apply` works."""
    pipe = object()  # the refusal comes before anything reads the pipeline
    with pytest.raises(ValueError, match=sentence):
        call(pipe)


@pytest.mark.parametrize("frames,options,sentence", [
    ("nan", {"value_range": (0, 1)}, "Frame 2 holds NaN or infinite values"),
    ("nan", {}, "Frame 2 holds NaN or infinite values"),
    ("ok", {"value_range": (0, 1e308)}, "value_range must be"),
    ("tiny", {}, "Optical flow needs frames of at least 12 px on one side; these are 1x1"),
    ("ok", {"flow_downscale": 1000}, "these are 0x0 after flow_downscale 1000"),
])
def test_metrics_refuse_frames_they_cannot_measure(frames, options, sentence):
    """NaN frames (with or without a value range), a range float32 cannot hold, frames too small for
    optical flow (or downscaled below it): one sentence, never black frames or an OpenCV message."""
    import numpy as np

    from samg_video import metrics

    clip = np.random.default_rng(0).random((4, 1, 1, 3) if frames == "tiny" else (4, 32, 32, 3)).astype(np.float32)
    if frames == "nan":
        clip[2, 5, 5, 1] = np.nan
    with pytest.raises(ValueError, match=sentence):
        metrics.compute(clip, metrics=["flicker", "warp_error", "motion"], **options)


def test_a_16_bit_grey_image_is_read_as_its_values(tmp_path):
    """A 16-bit grey PNG (PIL mode I;16) as --image: its values scaled to 8 bits (a ramp stays a ramp,
    mean within 0.5 of value / 257), not clipped to white; a float image (mode F) is one sentence."""
    import numpy as np
    from PIL import Image

    from samg_video import media

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I;16")
    read = np.asarray(media.load_image(tmp_path / "grey16.png"))
    assert read.shape == (64, 64, 3) and (read[..., 0] == read[..., 2]).all()
    assert abs(read.mean() - (ramp / 257).mean()) < 0.5 and (read == 255).mean() < 0.01
    Image.fromarray(np.random.default_rng(0).random((8, 8)).astype(np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(ValueError, match="a floating-point image"):
        media.load_image(tmp_path / "float.tiff")


def test_non_finite_weights_stop_the_run_in_one_sentence():
    """NaN in the denoiser's weights stops the guided run at the first step; NaN frames from any later
    component (a VAE decoding NaN) are refused where the pipeline's output is read: never a black clip."""
    import types

    import numpy as np
    import torch

    from samg_video import guidance
    from samg_video.generate import generate_clip, load_target
    from samg_video.pipelines.registry import frames_of

    target = load_target(model="demo", device="cpu", steps=2)
    with torch.no_grad():
        next(target.pipe.unet.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="contains NaN or Inf at step 0"):
        generate_clip(target, "a red circle moving left", guidance.create("cfg", scale=4.0))
    frames = np.full((1, 3, 8, 8, 3), 0.5, np.float32)
    frames[0, 1, 2, 2, 0] = np.nan  # what diffusers' postprocessing passes on from a NaN decode
    with pytest.raises(ValueError, match="output holds NaN or infinite values"):
        frames_of(types.SimpleNamespace(frames=frames))


def test_a_video_format_into_an_existing_folder_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    """generate --out EXISTING_FOLDER --format mp4: one sentence and exit code 2 before any model loads."""
    from samg_video import cli, generate

    monkeypatch.setattr(generate, "load_target", lambda *a, **k: pytest.fail("the model was loaded"))
    (tmp_path / "clips").mkdir()
    rc = cli.main(["generate", "--prompt", "a red circle moving left", "--out", str(tmp_path / "clips"),
                   "--format", "mp4"])
    err = capsys.readouterr().err
    assert rc == 2 and "a folder of that name exists" in err and err.count("\n") == 1


@pytest.mark.parametrize("options,sentence", [
    (["--size", "100000x100000"], "from 1 to 8192 px a side"),
    (["--flow-downscale", "1000"], "--flow-downscale must be at least 1 and at most 64"),
    (["--size", "32x32", "--flow-downscale", "4"], "leaves optical flow under 12 px a side"),
])
def test_eval_sizes_it_cannot_measure_are_refused_up_front(tmp_path, capsys, options, sentence):
    """Sizes past any video, or a flow downscale that leaves nothing to measure: exit code 2 and one
    line before any clip is read, never an OpenCV error per clip."""
    import numpy as np

    from samg_video import cli, media

    clip = media.write_video(np.zeros((3, 32, 32, 3), np.uint8), tmp_path / "a.mp4")
    try:
        rc = cli.main(["eval", str(clip), *options])
    except SystemExit as exit_:  # argparse's own refusal of a bad --size
        rc = exit_.code
    assert rc == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err


def test_frame_folders_of_any_png_mode_are_read_as_their_values(tmp_path):
    """Frames saved as 1-bit, 16-bit grey, palette and RGBA PNGs read as the same 8-bit RGB clip (a
    square on black), and eval measures a 1-bit folder."""
    import numpy as np
    from PIL import Image

    from samg_video import cli, media

    square = np.zeros((3, 32, 32), bool)
    for t in range(3):
        square[t, 8:16, 4 + 4 * t:12 + 4 * t] = True
    want = np.repeat(square[..., None], 3, axis=-1).astype(np.uint8) * 255
    modes = {"1": lambda m: Image.fromarray(m).convert("1"),
             "I;16": lambda m: Image.fromarray(m.astype(np.uint16) * 65535),
             "P": lambda m: Image.fromarray(m.astype(np.uint8) * 255).convert("P"),
             "RGBA": lambda m: Image.fromarray(np.dstack([m.astype(np.uint8) * 255] * 3 + [np.full(m.shape, 9,
                                                                                                  np.uint8)]))}
    for mode, make in modes.items():
        folder = tmp_path / mode.replace(";", "_")
        folder.mkdir()
        for t in range(3):
            make(square[t]).save(folder / f"{t:04d}.png")
        assert np.array_equal(media.read_video(folder), want), mode
    assert cli.main(["eval", str(tmp_path / "1")]) == 0


def test_a_prompt_with_more_objects_than_the_bundled_model_draws_is_refused_before_it_loads(capsys, monkeypatch,
                                                                                           tmp_path):
    from samg_video import cli, generate

    monkeypatch.setattr(generate, "load_target", lambda *a, **k: pytest.fail("the model was loaded"))
    prompt = "a red circle moving left and a blue square moving up and a green triangle moving down"
    rc = cli.main(["generate", "--prompt", prompt, "--out", str(tmp_path / "clip.mp4")])
    err = capsys.readouterr().err
    assert rc == 2 and "This model draws at most 2 objects" in err and err.count("\n") == 1


@pytest.mark.parametrize("damage, named", [
    (("model_index.json", "junk", "x" * (3 << 20)), "model_index.json is 3 MiB"),  # diffusers would echo it
    (("transformer/config.json", "num_layers", 1_000_000), "num_layers = 1000000 is beyond any real model's"),
    (("transformer/config.json", "ffn_dim", 1_000_000_000), "ffn_dim = 1000000000 is beyond any real model's"),
    (("vae/config.json", "base_dim", float("nan")), "base_dim is NaN"),
])
def test_a_model_folders_configs_are_checked_before_anything_is_built(tmp_path, capsys, damage, named):
    """A stand-in Wan folder with one config damaged: one line naming the file and key, exit 2, before
    any class is built (a 3 MiB key, a million layers, a billion-wide layer, a NaN size)."""
    import standins

    folder = standins.write("wan2.1-t2v-1.3b", tmp_path / "wan")
    rel, key, value = damage
    config = json.loads((folder / rel).read_text())
    config[key] = value
    (folder / rel).write_text(json.dumps(config))
    capsys.readouterr()  # the stand-in writer's progress bar
    code = cli.main(["generate", "--model", "wan2.1-t2v-1.3b", "--model-path", str(folder), "--device", "cpu",
                     "--prompt", "a fox", "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and named in err and len(err) < 600, err[:600]
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("name, multiple", [("cogvideox-2b", 16), ("ltx-video", 32)])
def test_a_size_the_model_cannot_make_is_one_sentence_before_any_step(tmp_path, capsys, name, multiple):
    """--height 40: CogVideoX (VAE 8 x patch 2) failed inside its transformer with 'The size of tensor
    a (7) must match ...'; LTX-Video (VAE 32) answered with its own check. Both now say the multiple
    and the nearest sizes, before a step runs."""
    import standins

    folder = standins.write(name, tmp_path / "model")
    capsys.readouterr()
    code = cli.main(["generate", "--model", name, "--model-path", str(folder), "--device", "cpu", "--prompt", "a fox",
                     "--out", str(tmp_path / "x.mp4"), "--steps", "1", "--height", "40", "--width", str(multiple)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err[:600]
    assert f"--height 40: {name} makes sizes in multiples of {multiple}" in err and not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("kind", ["fifo", "dangling link"])
def test_a_model_folder_of_anything_but_plain_files_is_refused(tmp_path, capsys, kind):
    """A FIFO or a link to nothing in place of a component's weights: one line naming the file, exit 2
    (diffusers said 'no file named ... found', fell back to the .bin name, 3 lines)."""
    import standins

    folder = standins.write("wan2.1-t2v-1.3b", tmp_path / "wan")
    weights = next((folder / "transformer").glob("*.safetensors"))
    weights.unlink()
    os.mkfifo(weights) if kind == "fifo" else weights.symlink_to(tmp_path / "gone")
    capsys.readouterr()
    code = cli.main(["generate", "--model", "wan2.1-t2v-1.3b", "--model-path", str(folder), "--device", "cpu",
                     "--prompt", "a fox", "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(weights) in err, err[:600]
    assert ("link to nothing" if kind != "fifo" else "not a regular file") in err


@pytest.mark.parametrize("component, key", [("text_encoder", "d_ff"), ("transformer", "ffn_dim")])
def test_a_component_whose_weights_do_not_fit_its_config_is_one_sentence(tmp_path, capsys, component, key):
    """A Wan stand-in whose text encoder's (transformers) or transformer's (diffusers) config.json asks
    for another width than its weights hold: one line naming the folder, the component and what is
    wrong (not transformers' 'look at the above report')."""
    import standins

    folder = standins.write("wan2.1-t2v-1.3b", tmp_path / "wan")
    config = json.loads((folder / component / "config.json").read_text())
    config[key] *= 2
    (folder / component / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    code = cli.main(["generate", "--model", "wan2.1-t2v-1.3b", "--model-path", str(folder), "--device", "cpu",
                     "--prompt", "a fox", "--out", str(tmp_path / "x.mp4"), "--steps", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err[:800]
    assert str(folder) in err and f"the {component} component's weights ({component}/)" in err
    assert "do not have the shapes its config.json gives" in err and "above report" not in err
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("what", ["preset", "prompts", "sweep"])
def test_every_yaml_file_is_read_by_the_one_strict_reader(tmp_path, what):
    """A guidance preset, a prompt suite and a sweep config refuse the same things in the same
    sentence: a FIFO (which would block), more than 1 MiB, aliases, a repeated key."""
    import os

    from samg_video import guidance
    from samg_video.prompts import load_prompts
    from samg_video.sweep import load_sweep

    read = {"preset": guidance.load_config, "prompts": load_prompts, "sweep": load_sweep}[what]
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    cases = {fifo: "is not a file but a FIFO"}
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * (1 << 20) + "\n")
    cases[big] = "larger than 1 MiB"
    alias = tmp_path / "alias.yaml"
    alias.write_text("a: &a [x, x]\nb: [*a, *a]\n")
    cases[alias] = "aliases"
    twice = tmp_path / "twice.yaml"
    twice.write_text("method: cfg\nmethod: samg\n")
    cases[twice] = "given twice"
    for path, message in cases.items():
        with pytest.raises(ValueError, match=message):
            read(path)
