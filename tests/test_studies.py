"""The GPU study configs, run end to end (sweep + report) on the stand-ins with a tiny CLIP.

Each study keeps its methods, prompt file, reference and metrics; only its size shrinks
(one seed, one prompt from two categories, the stand-in's frames and resolution, 2 steps).
"""

import json

import pytest
import yaml

import standins
from samg_video import cli
from samg_video.prompts import load_prompts, resolve
from samg_video.manifest import read_manifest

STUDIES = {"wan_study": "wan2.1-t2v-1.3b", "cogvideox_study": "cogvideox-5b", "ltx_study": "ltx-video"}


@pytest.mark.parametrize("study", list(STUDIES))
def test_study_runs_on_the_standin(study, repo_root, standin_root, clip_dir, tmp_path):
    name = STUDIES[study]
    config = yaml.safe_load((repo_root / "configs" / "sweeps" / f"{study}.yaml").read_text())
    assert config["model"] == name and config["clip_model"] == "openai/clip-vit-base-patch32"
    config.update(seeds=[0], per_category=1, categories=["fast_motion", "multi_object"], clip_model=clip_dir)
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    frames, height, width = standins.SIZES[name]
    run = tmp_path / "run"
    args = ["--out", str(run), "--model-path", str(standin_root / name), "--frames", str(frames), "--height",
            str(height), "--width", str(width), "--steps", "2", "--device", "cpu"]
    assert cli.main(["sweep", str(path), *args]) == 0
    assert cli.main(["report", str(run)]) == 0
    rows = read_manifest(run)
    assert len(rows) == 2 * len(config["methods"]) and not any("error" in r for r in rows)
    for r in rows:
        assert all(r[k] is not None for k in ("clip_score", "warp_error", "flicker", "lpips_temporal", "motion"))
        assert r["setting"]["model"] == name and r["tags"][0] in ("fast_motion", "multi_object")
        assert (r["method"]["method"] in ("samg", "samg+stg")) == ("field_change_warped" in r)
        assert r["denoiser_passes"] == (3 if r["method"]["method"] in ("stg", "samg+stg") else 2)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["reference"] == f"cfg {config['reference'].split(':')[1]}"
    md = (run / "report.md").read_text()
    assert "CLIP score" in md and "change (warped)" in md and "tradeoff_warp_error.png" in md


def test_prompt_suite_has_sixty_tagged_prompts_in_every_category(repo_root):
    prompts = load_prompts(resolve("temporal"))
    categories = yaml.safe_load(resolve("temporal").read_text())["categories"]
    assert len(prompts) >= 60 and len({p["prompt"] for p in prompts}) == len(prompts)
    assert {p["tags"][0] for p in prompts} == set(categories)
    readme = resolve("temporal").with_name("README.md").read_text()
    assert all(f"`{c}`" in readme for c in categories)


def test_undeclared_tag_is_a_clear_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("categories: {a: x}\nprompts:\n  - {prompt: hi, tags: [b]}\n")
    with pytest.raises(ValueError, match="undeclared tag 'b'"):
        load_prompts(path)
