"""Sweeps: resumable manifest, recorded failures, and accelerate's split giving the same results."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from samg_video import cli
from samg_video.sweep import items_of, load_sweep, read_manifest


@pytest.fixture
def config_path(tmp_path, repo_root):
    config = yaml.safe_load((repo_root / "configs" / "sweeps" / "smoke.yaml").read_text())
    config["steps"] = 3
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def strip(rows):
    return [{k: v for k, v in r.items()} for r in rows]


def test_sweep_resumes_without_redoing_or_losing(config_path, tmp_path):
    full = tmp_path / "full"
    assert cli.main(["sweep", str(config_path), "--out", str(full)]) == 0
    rows = read_manifest(full)
    assert len(rows) == len(items_of(load_sweep(config_path))) == 8

    # an interrupted run: the last item lost and the line before it torn mid-write
    part = tmp_path / "part"
    part.mkdir()
    lines = (full / "manifest.rank0.jsonl").read_text().splitlines()
    (part / "manifest.rank0.jsonl").write_text("\n".join(lines[:6]) + "\n" + lines[6][:40])
    assert cli.main(["sweep", str(config_path), "--out", str(part)]) == 0
    assert strip(read_manifest(part)) == strip(rows)
    redone = [json.loads(x) for x in (part / "manifest.rank0.jsonl").read_text().splitlines()[7:]]
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
    a, b = read_manifest(one), read_manifest(tmp_path / "four")
    assert [r["id"] for r in a] == [r["id"] for r in b]
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
    assert strip(a) == strip(b)
    for row in a:
        assert np.array_equal(np.load(one / "clips" / f"{row['id']}.npy"), np.load(two / "clips" / f"{row['id']}.npy"))


def test_report_from_a_sweep(tmp_path):
    config = {"prompts": ["a red circle moving left", "a cyan square standing still and a red triangle moving up"],
              "seeds": [0], "steps": 2, "methods": ["cfg:2", "cfg:6", "samg:2-6"]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "run")]) == 0
    assert cli.main(["report", str(tmp_path / "run")]) == 0
    md = (tmp_path / "run" / "report.md").read_text()
    page = (tmp_path / "run" / "report.html").read_text()
    for label in ("cfg 2", "cfg 6", "samg 2-6"):
        assert f"| {label} | 2 |" in md and label in page
    assert (tmp_path / "run" / "tradeoff_out_of_range.png").stat().st_size > 1000
    assert page.count("data:image/png;base64,") >= 6 and "src=\"http" not in page  # self-contained
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    methods = summary["methods"]
    assert methods["samg 2-6"]["n"] == 2 and 0 <= methods["cfg 6"]["single"] <= 1
    # paired comparison: the reference is the most accurate CFG row; its difference to itself is exactly 0,
    # and another method's mean difference equals the one computed here from the manifest
    ref = summary["paired_reference"]
    assert ref in ("cfg 2", "cfg 6")
    assert methods[ref]["prompt_correct"] == max(methods[k]["prompt_correct"] for k in ("cfg 2", "cfg 6"))
    assert summary["paired"][ref]["warp_error"] == [0.0, 0.0]
    rows = read_manifest(tmp_path / "run")
    pick = lambda label: {(r["prompt"], r["seed"]): r for r in rows  # noqa: E731
                          if (r["method"]["method"], r["method"].get("scale", r["method"].get("w_min"))) == label}
    ours, base = pick(("samg", 2.0)), pick(("cfg", float(ref.split()[1])))
    expected = np.mean([ours[k]["warp_error"] - base[k]["warp_error"] for k in ours])
    assert summary["paired"]["samg 2-6"]["warp_error"][0] == pytest.approx(expected, abs=1e-12)
    assert f"Paired against **{ref}**" in md and "| samg 2-6 | 2 |" in md.split("Paired against")[1]


def test_report_of_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "run `samg-video sweep` first" in capsys.readouterr().err
