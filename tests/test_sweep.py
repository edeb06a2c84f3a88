"""Sweeps: resumable manifest, recorded failures, and accelerate's split giving the same results."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from samg_video import cli, media
from samg_video.manifest import read_manifest
from samg_video.sweep import items_of, load_sweep


@pytest.fixture
def config_path(tmp_path, repo_root):
    config = yaml.safe_load((repo_root / "configs" / "sweeps" / "smoke.yaml").read_text())
    config["steps"] = 3
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def strip(rows):
    """Rows without their wall-clock seconds (the only field that differs between equal runs)."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_sweep_resumes_without_redoing_or_losing(config_path, tmp_path):
    full = tmp_path / "full"
    assert cli.main(["sweep", str(config_path), "--out", str(full)]) == 0
    rows = read_manifest(full)
    assert len(rows) == len(items_of(load_sweep(config_path))) == 8

    # an interrupted run: the last item lost and the line before it torn mid-write
    part = tmp_path / "part"
    shutil.copytree(full / "clips", part / "clips")  # the clips of the recorded items are on disk
    lines = (full / "manifest.rank0.jsonl").read_text().splitlines()
    (part / "manifest.rank0.jsonl").write_text("\n".join(lines[:6]) + "\n" + lines[6][:40])
    assert cli.main(["sweep", str(config_path), "--out", str(part)]) == 0
    assert strip(read_manifest(part)) == strip(rows)
    lines = (part / "manifest.rank0.jsonl").read_text().splitlines()
    assert len(lines) == 8  # the torn line was dropped on resume, not left in the file
    redone = [json.loads(x) for x in lines[6:]]
    assert len(redone) == 2  # only the torn and the missing item ran again


@pytest.mark.parametrize("batch", [1, 3])
def test_failed_item_is_recorded_and_sweep_goes_on(tmp_path, batch):
    config = {"prompts": ["a red circle moving left", "a purple blob", "a green square standing still"],
              "seeds": [0], "steps": 2, "methods": ["cfg:3"], "batch": batch}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "run")]) == 1
    rows = {r["prompt"]: r for r in read_manifest(tmp_path / "run")}
    assert "Unknown word 'purple'" in rows["a purple blob"]["error"]
    assert "warp_error" in rows["a red circle moving left"] and "warp_error" in rows["a green square standing still"]


def test_batched_sweep_equals_one_by_one(config_path, tmp_path):
    """Items carry their own noise seed, so batching changes nothing but float rounding."""
    one = tmp_path / "one"
    assert cli.main(["sweep", str(config_path), "--out", str(one)]) == 0
    config = yaml.safe_load(config_path.read_text())
    config["batch"] = 4
    batched_path = tmp_path / "batched.yaml"
    batched_path.write_text(yaml.safe_dump(config))
    assert cli.main(["sweep", str(batched_path), "--out", str(tmp_path / "four")]) == 0
    key = lambda r: (r["prompt"], r["seed"], json.dumps(r["method"], sort_keys=True))  # noqa: E731
    a, b = sorted(read_manifest(one), key=key), sorted(read_manifest(tmp_path / "four"), key=key)
    assert [key(r) for r in a] == [key(r) for r in b]
    assert {r["setting"]["batch"] for r in a} == {1} and {r["setting"]["batch"] for r in b} == {4}  # batch is in the id
    for x, y in zip(a, b):
        assert {k: x[k] for k in x if k.startswith("prompt_")} == {k: y[k] for k in y if k.startswith("prompt_")}
        assert x["flicker"] == pytest.approx(y["flicker"], abs=1e-3)


def test_two_processes_equal_one(config_path, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli.main(["sweep", str(config_path), "--out", str(one)]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "samg_video.cli", "sweep", str(config_path), "--out", str(two)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in two.glob("manifest.rank*.jsonl")) == ["manifest.rank0.jsonl", "manifest.rank1.jsonl"]
    a, b = read_manifest(one), read_manifest(two)
    # LPIPS sums in torch, whose reductions depend on the thread count (1 per process here, 2 in-process)
    assert [r.pop("lpips_temporal") for r in a] == pytest.approx([r.pop("lpips_temporal") for r in b], abs=1e-7)
    assert strip(a) == strip(b)
    for row in a:
        assert (one / "clips" / f"{row['id']}.mp4").read_bytes() == (two / "clips" / f"{row['id']}.mp4").read_bytes()


def test_report_from_a_sweep(tmp_path):
    config = {"prompts": ["a red circle moving left", "a cyan square standing still and a red triangle moving up"],
              "seeds": [0], "steps": 2, "lpips": False, "reference": "cfg:6",
              "methods": ["samg:2-6,temporal_sigma=0", "cfg:6", "cfg:2", "samg:2-6,normalize=frame"]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "run")]) == 0
    assert cli.main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    page = (tmp_path / "rep" / "report.html").read_text()
    # rows grouped by family (CFG first), then ordered by scale, whatever the config's order
    alignment = md.split("## Alignment")[1].split("##")[0]
    assert alignment.index("| cfg 2 |") < alignment.index("| cfg 6 (reference) |") < alignment.index("| samg 2-6 |")
    assert "**" not in page and "| cfg" not in page  # no markdown leaks into the HTML
    assert (tmp_path / "rep" / "tradeoff_warp_error.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["reference"] == "cfg 6" and summary["planned"] == summary["items"] == 8
    methods = summary["methods"]
    assert methods["samg 2-6"]["n"] == 2 and methods["samg 2-6"]["field_change"] > 0
    assert methods["cfg 2"]["field_mean"] is None  # no field for CFG: null, not NaN
    assert summary["paired"]["cfg 6"]["warp_error"] == [0.0, 0.0]
    rows = read_manifest(tmp_path / "run")
    pick = lambda method: {(r["prompt"], r["seed"]): r for r in rows if r["method"] == method}  # noqa: E731
    plain_samg = next(r["method"] for r in rows
                      if r["method"]["method"] == "samg" and r["method"]["normalize"] == "clip")
    ours = pick(plain_samg)
    base = pick({"method": "cfg", "scale": 6.0})
    expected = np.mean([ours[k]["warp_error"] - base[k]["warp_error"] for k in ours])
    assert summary["paired"]["samg 2-6"]["warp_error"][0] == pytest.approx(expected, abs=1e-12)
    # each option against the same range without it
    option = summary["options"]["samg 2-6 normalize=frame"]
    framed = pick(next(r["method"] for r in rows if r["method"].get("normalize") == "frame"))
    expected = np.mean([framed[k]["warp_error"] - ours[k]["warp_error"] for k in ours])
    assert option["base"] == "samg 2-6" and option["warp_error"][0] == pytest.approx(expected, abs=1e-12)
    assert "## Each option on its own" in md
    # two pairs per method: Student t intervals with n beside them, flagged as few
    from scipy import stats

    d = np.array([ours[k]["warp_error"] - base[k]["warp_error"] for k in sorted(ours)])
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    assert summary["paired"]["samg 2-6"]["warp_error"][1] == pytest.approx(half, rel=1e-9)
    assert half > 6 * d.std(ddof=1) / np.sqrt(len(d))  # about 6.5x the normal approximation's 1.96 at n = 2
    paired_table = md.split("## Paired differences")[1].split("##")[0]
    assert "| samg 2-6 | 2 (few) |" in paired_table and "fewer than 10 pairs" in paired_table
    assert "prompt acc (pts)" in paired_table and "prompt_correct" not in paired_table  # readable names, units
    # the page: sortable tables, the reference row marked, every item listed, clips with controls and posters
    assert page.count("<table class=sort") >= 4 and "addEventListener('click'" in page
    assert page.count("<tr class=ref>") >= 2 and "<td data-v=" in page
    items = page.split("id='items'")[1]
    assert all(items.count(f"<td>{r['prompt']}</td>") == 4 for r in rows[:2])
    # the gallery plays every method's clip of the same prompts, with the heatmap beside SAMG's
    for r in rows:
        assert f'src="gallery/{r["id"]}.mp4"' in page
    samg_ids = [r["id"] for r in rows if r["method"]["method"] == "samg"]
    assert all(f'src="gallery/{i}_field.mp4"' in page for i in samg_ids)
    assert media.read_video(tmp_path / "rep" / "gallery" / f"{samg_ids[0]}_field.mp4").shape[0] == 8
    assert page.count(" controls loop") == len(rows) + len(samg_ids) and "poster=\"gallery/" in page
    assert (tmp_path / "rep" / "gallery" / f"{samg_ids[0]}.png").stat().st_size > 100  # the poster frame
    # one file: plots and clips embedded; past the budget a clip is skipped and counted
    assert cli.main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "one"), "--single-file"]) == 0
    single = (tmp_path / "one" / "report.html").read_text()
    assert not (tmp_path / "one" / "gallery").exists() and "data:video/mp4;base64," in single
    assert set(re.findall(r'(?:src|poster)="([a-z]+):', single)) == {"data"}  # nothing outside the file
    assert cli.main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "small"), "--single-file",
                     "--max-embed-mb", "0.01"]) == 0
    small = (tmp_path / "small" / "report.html").read_text()
    assert "clips are not embedded" in small and "data:video/mp4" not in small


def test_report_judges_each_skip_policy_against_its_margins_and_pixels(tmp_path):
    """The skip section's numbers against independent computations: calls from the manifest, the
    paired t interval from scipy, the margin rule by hand, PSNR from scikit-image on the kept frames."""
    from scipy import stats
    from skimage.metrics import peak_signal_noise_ratio

    from samg_video.manifest import load_frames

    config = {"prompts": ["a red circle moving left", "a cyan square standing still and a red triangle moving up"],
              "seeds": [0, 1], "steps": 6, "lpips": False, "keep_frames": True, "methods": ["cfg:2"],
              "skips": ["off", "every:2", "error:10", "every:2,start=0.9"],
              "margins": {"prompt_correct": 2, "warp_error": 0.001}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "run")]) == 0
    assert cli.main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "rep")]) == 0
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    rows = read_manifest(tmp_path / "run")
    full = {(r["prompt"], r["seed"]): r for r in rows if "skip" not in r["method"]}
    for name, policy in (("cfg 2 skip every 2", "every"), ("cfg 2 skip error 10", "error")):
        s = summary["skips"][name]
        mine = [r for r in rows if r["method"].get("skip", {}).get("policy") == policy
                and not r["method"]["skip"].get("start")]
        calls = [r["denoiser_calls"] for r in mine]
        assert s["base"] == "cfg 2" and s["n"] == 4
        assert s["calls"][:3] == [pytest.approx(np.mean(calls)), min(calls), max(calls)]
        d = np.array([r["warp_error"] - full[(r["prompt"], r["seed"])]["warp_error"] for r in mine])
        half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
        mean, width, ok = s["margins"]["warp_error"]
        assert (mean, width) == (pytest.approx(d.mean(), abs=1e-12), pytest.approx(half, rel=1e-9))
        assert ok == (d.mean() + half <= 0.001)  # lower is better: the interval's top within the margin
        run = tmp_path / "run"
        pairs = [(load_frames(run, r["id"]), load_frames(run, full[(r["prompt"], r["seed"])]["id"])) for r in mine]
        values = [peak_signal_noise_ratio(b, a, data_range=255) for a, b in pairs]
        assert s["psnr"] == [4, pytest.approx(np.median(values)), pytest.approx(min(values))]
        assert s["keeps"] == all(m[2] for m in s["margins"].values())
    # a policy that acts after the last step (5 / 6 < 0.9) computes every pass: the same pixels, PSNR inf,
    # written to the JSON summary as "inf" (JSON has no infinity) and to the table as "identical"
    late = next(v for k, v in summary["skips"].items() if "start=0.9" in k or "start 0.9" in k)
    assert late["calls"][:3] == [12, 12, 12] and late["psnr"] == [4, "inf", "inf"], late
    assert [r["plan"] for r in rows if r["method"].get("skip", {}).get("policy") == "error"][0] == "CCRRRC"
    assert load_frames(tmp_path / "run", rows[0]["id"]).shape == (8, 32, 32, 3)
    md = (tmp_path / "rep" / "report.md").read_text()
    section = md.split("## Skip policies")[1].split("\n## ")[0]
    assert "| cfg 2 skip error 10 | cfg 2 | 4 (few) |" in section and "margin 0.001" in section
    assert (tmp_path / "rep" / "skip_plans.png").stat().st_size > 1000  # only the error row has a signal


def test_option_bases():
    from samg_video.guidance.spec import label, parse_spec
    from samg_video.report import option_bases

    specs = ["cfg:2", "samg:1-3", "samg:1-3,temporal_sigma=1", "stg:2,scale_stg=1", "samg+stg:1-3,scale_stg=1",
             "samg+stg:1-3,temporal_sigma=1,scale_stg=1", "samg:1-3,temporal_sigma=1,step_ema=0.5", "apg:5"]
    configs = [parse_spec(s).to_dict() for s in specs]
    table = {label(c): {"config": c} for c in configs}
    assert list(table) == ["cfg 2", "samg 1-3", "samg 1-3 temporal_sigma=1", "stg 2 scale_stg=1",
                           "samg+stg 1-3 scale_stg=1", "samg+stg 1-3 temporal_sigma=1 scale_stg=1",
                           "samg 1-3 temporal_sigma=1 step_ema=0.5", "apg 5"]
    assert option_bases(table) == {
        "samg 1-3 temporal_sigma=1": "samg 1-3", "stg 2 scale_stg=1": "cfg 2", "samg+stg 1-3 scale_stg=1": "samg 1-3",
        "samg+stg 1-3 temporal_sigma=1 scale_stg=1": "samg 1-3 temporal_sigma=1",
        "samg 1-3 temporal_sigma=1 step_ema=0.5": "samg 1-3"}


def test_plot_labels_do_not_pile_up(tmp_path, monkeypatch):
    """Eight methods whose points nearly coincide (as SAMG's option rows do): every scale label is
    drawn, and no two labels' boxes overlap on the saved figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from samg_video.report.plots import tradeoff_plots

    specs = ["cfg:2", "cfg:3", "samg:1-3", "samg:1-3,normalize=frame", "samg:1-3,temporal_sigma=1", "samg:1.5-4.5",
             "apg:2", "tcfg:2"]
    from samg_video import cards
    from samg_video.guidance.spec import family, label, parse_spec

    table, paired = {}, {}
    for k, spec in enumerate(specs):
        config = parse_spec(spec, cards.card("demo")).to_dict()
        name = label(config)
        table[name] = {"config": config, "family": family(config), "prompt_correct": 0.8, "clip_score": float("nan")}
        paired[name] = {"prompt_correct": (-0.04 + 0.001 * k, 0.02), "flicker": (-0.001 - 0.00002 * k, 0.0003)}
    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    files = tradeoff_plots(table, paired, "cfg 2", tmp_path)
    assert [f.name for f in files] == ["tradeoff_flicker.png"] and len(figures) == 1
    fig = figures[0]
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.axes[0].texts if t.get_text()]
    assert len(texts) == len(specs)
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the label, without its leader line
    overlapping = [(texts[i].get_text(), texts[j].get_text()) for i in range(len(boxes))
                   for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
    assert not overlapping, overlapping


def test_report_of_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "run `samg-video sweep` first" in capsys.readouterr().err


def test_labels_show_every_parameter_that_differs_from_its_default():
    from dataclasses import fields

    from samg_video import guidance
    from samg_video.guidance.base import REGISTRY
    from samg_video.guidance.spec import label, parse_spec

    assert label(parse_spec("rescale:3,phi=0.0").to_dict()) == "rescale 3 phi=0"
    assert label(parse_spec("apg:3,eta=0.123456789").to_dict()) == "apg 3 eta=0.123456789"  # no digits lost
    changed = 0
    for name in guidance.available():
        base = label(guidance.create(name).to_dict())
        for f in fields(REGISTRY[name]):
            if isinstance(f.default, float) and f.name not in ("scale", "w_min", "w_max"):
                for value in (f.default + 0.25, f.default - 0.25):
                    try:
                        config = guidance.create(name, **{f.name: value}).to_dict()
                    except ValueError:
                        continue
                    assert label(config) != base and f"{f.name}=" in label(config), (name, f.name)
                    changed += 1
                    break
    assert changed >= 20


def test_report_keeps_two_configs_apart_that_differ_in_one_option():
    """rescale 3 with phi 0 and phi 1 are two methods: two rows, each the mean of its own items."""
    from samg_video.guidance.spec import parse_spec
    from samg_video.report import summarise

    rows = [{"id": f"{phi}{seed}", "prompt": "p", "seed": seed, "method": parse_spec(f"rescale:3,phi={phi}").to_dict(),
             "warp_error": warp} for phi, warp in ((0.0, 0.007), (1.0, 0.031)) for seed in (0, 1)]
    table = summarise(rows)
    assert {name: (r["n"], round(r["warp_error"], 3)) for name, r in table.items()} == {
        "rescale 3 phi=0": (2, 0.007), "rescale 3 phi=1": (2, 0.031)}


@pytest.mark.parametrize("text,message", [
    ("prompts: a red circle\n", "prompts must be a list"),
    ("lpips: 'false'\n", "lpips must be true or false"),
    ("seeds: [true]\n", "seeds must be a list of whole numbers"),
    ("steps: 5000\n", "steps must be a whole number from 1 to 1000"),
    ("categories: str\n", "categories must be a list"),
    ("seeds: [1]\nseeds: [2]\n", "the key 'seeds' is given twice"),
    ("a: &a [x, x]\nb: &b [*a, *a]\n", "aliases"),
    ("dtype: float16\n", "takes dtype float32 only"),
    ("dtype: float64\n", "dtype must be one of float32, float16, bfloat16"),
    ("height: 64\n", "takes height 32 only"),
    ("margins: {prompt_acc: 2}\n", "'prompt_acc' is not a metric"),
    ("margins: {warp_error: -1}\n", "warp_error must be a positive number"),
    ("margins: [warp_error]\n", "margins must map metric columns"),
    ("keep_frames: 'yes'\n", "keep_frames must be true or false"),
])
def test_sweep_configs_are_checked_before_use(tmp_path, text, message):
    from samg_video.sweep import load_sweep

    base = {"methods": ["cfg:2"], "seeds": [0], "prompts": ["a red circle moving left"]}
    path = tmp_path / "s.yaml"
    override = yaml.safe_load(text.split("\nseeds: [2]")[0]) if "&" not in text else {}
    path.write_text(yaml.safe_dump({k: v for k, v in base.items() if k not in override}) + text)
    with pytest.raises(ValueError, match=message):
        load_sweep(path)


def test_another_checkpoint_is_another_sweep(tmp_path):
    """The same config with --model-path another checkpoint gives other item ids (weights fingerprint)."""
    import shutil

    from samg_video.cards import MODELS_DIR
    from samg_video.sweep import items_of, weights_fingerprint

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(MODELS_DIR / "demo-t2v", a)
    shutil.copytree(MODELS_DIR / "demo-t2v", b)
    weights = b / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert weights_fingerprint(a) == weights_fingerprint(MODELS_DIR / "demo-t2v") != weights_fingerprint(b)
    config = {"methods": ["cfg:2"], "seeds": [0], "prompts": ["a red circle moving left"]}
    ids = [items_of({**config, "model_path": str(m)})[0].id for m in (a, b)] + [items_of(config)[0].id]
    assert len(set(ids)) == 3


def test_resume_redoes_a_deleted_or_broken_clip(tmp_path):
    from samg_video.manifest import done_ids

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"methods": ["cfg:2"], "seeds": [0, 1], "prompts": ["a red circle moving left"],
                                    "steps": 2, "lpips": False}))
    run = tmp_path / "run"
    assert cli.main(["sweep", str(path), "--out", str(run)]) == 0
    first, second = (r["id"] for r in read_manifest(run))
    (run / "clips" / f"{first}.mp4").unlink()
    (run / "clips" / f"{second}.mp4").write_bytes(b"junk")
    assert done_ids(run) == set()
    assert cli.main(["sweep", str(path), "--out", str(run)]) == 0
    assert done_ids(run) == {first, second}


def test_dry_run_counts_planned_done_and_left_without_loading(config_path, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    planned = len(items_of(load_sweep(config_path)))
    assert cli.main(["sweep", str(config_path), "--out", str(run), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith(f"{planned} planned, 0 done, {planned} left; no item is timed")
    assert not run.exists()
    assert cli.main(["sweep", str(config_path), "--out", str(run)]) == 0
    rows = read_manifest(run)
    assert all(r["seconds"] > 0 for r in rows)  # each item's wall time is recorded
    (run / "clips" / f"{rows[0]['id']}.mp4").unlink()
    import samg_video.generate as generate

    monkeypatch.setattr(generate, "load_target", lambda *a, **k: pytest.fail("a dry run loaded the model"))
    before = sorted(p.name for p in run.rglob("*"))
    capsys.readouterr()
    assert cli.main(["sweep", str(config_path), "--out", str(run), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{planned} planned, {planned - 1} done, 1 left; about ") and f"({planned} items timed" in out
    assert sorted(p.name for p in run.rglob("*")) == before


def test_limit_runs_the_first_prompts_whole_and_a_later_run_adds_the_rest(config_path, tmp_path, capsys):
    """--limit 1: the first prompt with every seed and method (4 of the smoke sweep's 8 items, so the
    report stays paired); the same folder without it resumes: 4 already there, 4 new, no bar for an
    empty share; the plan and the manifest agree."""
    run = tmp_path / "run"
    assert cli.main(["sweep", str(config_path), "--out", str(run), "--limit", "1", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("4 planned, 0 done, 4 left")
    assert cli.main(["sweep", str(config_path), "--out", str(run), "--limit", "1"]) == 0
    rows = read_manifest(run)
    assert len(rows) == 4 and {r["prompt"] for r in rows} == {"a red circle moving left"}
    assert {(r["seed"], r["method"]["method"]) for r in rows} == {(s, m) for s in (0, 1) for m in ("cfg", "samg")}
    capsys.readouterr()
    assert cli.main(["sweep", str(config_path), "--out", str(run)]) == 0
    assert "4 done, 4 already there" in capsys.readouterr().out
    assert len(read_manifest(run)) == 8
    assert cli.main(["sweep", str(config_path), "--out", str(run), "--limit", "1"]) == 0
    out, err = capsys.readouterr()
    assert "0 done, 4 already there" in out and "0/0" not in err
    assert cli.main(["report", str(run)]) == 0  # the report says what it is doing while it works
    err = capsys.readouterr().err
    assert "report: 4 items read" in err and "report: trade-off plots" in err and "report: gallery" in err
    assert "4 items of other settings or methods in this folder are left out" in (run / "report.md").read_text()


def test_eval_counts_one_video_in_the_singular(tmp_path, capsys):
    import numpy as np

    clip = media.write_video(np.zeros((3, 32, 32, 3), np.uint8), tmp_path / "still.mp4")
    assert cli.main(["eval", str(clip)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("1 video, 0 failed")


def test_an_item_uses_the_image_bytes_its_id_names(tmp_path):
    """The image is read once per item and must be the content the item's id names: a file replaced
    after planning fails the item in one sentence (nothing is recorded under the old content's id);
    the digest streams the file (a PNG followed by 64 MiB of bytes takes under 4 MiB)."""
    import tracemalloc

    import numpy as np
    from PIL import Image

    from samg_video.sweep import Item, file_digest, item_image

    rng = np.random.default_rng(0)
    path = tmp_path / "first.png"
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    item = Item("a cat", 0, {"method": "cfg", "scale": 5.0}, {}, (), str(path), file_digest(path))
    assert np.array_equal(np.asarray(item_image(item)), np.asarray(Image.open(path).convert("RGB")))
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)  # replaced mid-run
    with pytest.raises(ValueError, match="changed since this sweep was planned"):
        item_image(item)
    with open(path, "ab") as fh:
        fh.write(b"\0" * (64 << 20))
    tracemalloc.start()
    file_digest(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_manifest_ids_that_are_no_item_ids_never_reach_a_page_or_a_path(config_path, tmp_path):
    """A manifest line whose id holds a quote and markup, or a path out of the run folder, is not an
    item: the manifest reader drops it, so the report neither writes it into the page nor copies a
    file from outside the run folder into gallery/."""
    run = tmp_path / "run"
    assert cli.main(["sweep", str(config_path), "--out", str(run), "--limit", "1"]) == 0
    good = json.loads((run / "manifest.rank0.jsonl").read_text().splitlines()[0])
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not for the gallery")
    with open(run / "manifest.rank0.jsonl", "a") as fh:
        for bad in ('x" onerror="alert(1)', "../../secret"):
            fh.write(json.dumps({**good, "id": bad, "seed": 99}) + "\n")
    rows = read_manifest(run)
    assert len(rows) == 4 and all(r["seed"] != 99 for r in rows)
    assert cli.main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "onerror" not in page and "secret" not in page
    assert not any(p.read_bytes() == secret.read_bytes() for p in (run / "gallery").rglob("*") if p.is_file())
