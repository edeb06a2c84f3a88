"""VBench's temporal dimensions (samg_video.metrics.vbench) against VBench's own code.

Parity tier (skipped when the `vbench` package is absent; .ci/run installs it without its
dependencies): VBench's dimension functions and ours run on the same short videos with the same
tiny random models (facebookresearch/dino's VisionTransformer from tests/reference, OpenAI CLIP's
`clip.model.CLIP`, VBench's own RAFT), each model given to VBench as VBench loads it and to us as the
checkpoint file a user has. Independent truths need no VBench: a static video, a scene cut, the
dynamic-degree rule on known flows.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samg_video import metrics
from samg_video.metrics import vbench as vb

HAS_VBENCH = importlib.util.find_spec("vbench") is not None
needs_vbench = pytest.mark.skipif(not HAS_VBENCH, reason="VBench's package is not installed (see .ci/run)")


def dino_reference(seed: int = 0, pos_std: float = 1.0):
    """facebookresearch/dino's VisionTransformer, 2 blocks of width 64 (one head, as width / 64)."""
    sys.path.insert(0, str(Path(__file__).parent / "reference"))
    try:
        from dino_vision_transformer import VisionTransformer
    finally:
        sys.path.pop(0)
    torch.manual_seed(seed)
    model = VisionTransformer(patch_size=16, embed_dim=64, depth=2, num_heads=1, mlp_ratio=4, qkv_bias=True,
                              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_classes=0)
    with torch.no_grad():  # DINO initialises the table with std 0.02; larger values test the interpolation
        model.pos_embed.normal_(0, pos_std)
    return model.eval()


def clip_reference(seed: int = 0):
    import clip.model

    torch.manual_seed(seed)
    return clip.model.CLIP(embed_dim=32, image_resolution=224, vision_layers=2, vision_width=64, vision_patch_size=32,
                           context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1,
                           transformer_layers=1).eval()


def raft_reference(seed: int = 0):
    from easydict import EasyDict
    from vbench.third_party.RAFT.core.raft import RAFT

    torch.manual_seed(seed)
    model = RAFT(EasyDict(small=False, mixed_precision=False, alternate_corr=False))
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():  # fresh BatchNorm statistics are 0 / 1: give them values to map
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def moving_frames(n: int, h: int, w: int, step: int = 2, seed: int = 0) -> np.ndarray:
    """A smooth random texture translating `step` px per frame to the right (uint8, n x H x W x 3)."""
    g = np.random.default_rng(seed)
    base = np.asarray(Image.fromarray(g.integers(0, 256, (h // 8, (w + step * n) // 8, 3), dtype=np.uint8))
                      .resize(((w + step * n), h), Image.BILINEAR))
    return np.stack([base[:, i * step:i * step + w] for i in range(n)])


def write_gif(path: Path, frames: np.ndarray) -> Path:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=125, loop=0)
    return path


def write_pngs(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("vbench_models")
    torch.save(dino_reference().state_dict(), root / "dino_vitbase16_pretrain.pth")
    out = {"dino": root / "dino_vitbase16_pretrain.pth"}
    if HAS_VBENCH:
        torch.save(clip_reference().state_dict(), root / "ViT-B-32.pth")
        torch.save({f"module.{k}": v for k, v in raft_reference().state_dict().items()}, root / "raft-things.pth")
        out |= {"clip": root / "ViT-B-32.pth", "raft": root / "raft-things.pth"}
    return out


def ours(path, dims, checkpoints):
    models = vb.load_models({vb.MODEL_OF[d]: checkpoints[vb.MODEL_OF[d]] for d in dims})
    return metrics.compute(str(path), metrics=list(dims), vbench_models=models)


# ---------------------------------------------------------------- parity with VBench's code

@needs_vbench
def test_subject_consistency_equals_vbench(tmp_path, checkpoints):
    from vbench.subject_consistency import subject_consistency

    frames = moving_frames(6, 72, 120, step=5)  # 72 x 120: a 224 x 373 input, a 14 x 23 grid (interpolated table)
    gif = write_gif(tmp_path / "clip.gif", frames)
    agg, per_video = subject_consistency(dino_reference(), [str(gif)], "cpu", False)
    mine = ours(gif, ["subject_consistency"], checkpoints)
    assert mine["subject_consistency"] == pytest.approx(per_video[0]["video_results"], abs=1e-6)
    assert vb.vbench_results([{"path": str(gif), **mine}], ["subject_consistency"])["subject_consistency"][0] \
        == pytest.approx(agg, abs=1e-6)


@needs_vbench
def test_background_consistency_equals_vbench(tmp_path, checkpoints):
    from vbench.background_consistency import background_consistency

    frames = moving_frames(5, 90, 150, step=6, seed=1)
    clips = [write_gif(tmp_path / "a.gif", frames), write_gif(tmp_path / "b.gif", frames[:3])]
    agg, per_video = background_consistency(clip_reference(), None, [str(c) for c in clips], "cpu", False)
    rows = [{"path": str(c), **ours(c, ["background_consistency"], checkpoints)} for c in clips]
    for row, ref in zip(rows, per_video):
        assert row["background_consistency"] == pytest.approx(ref["video_results"], abs=1e-6)
    # VBench's aggregate weighs videos by their frame pairs (4 and 2 here), not one per video
    layout = vb.vbench_results(rows, ["background_consistency"])
    assert layout["background_consistency"][0] == pytest.approx(agg, abs=1e-6)
    assert [v["video_path"] for v in layout["background_consistency"][1]] == [str(c) for c in clips]


@needs_vbench
@pytest.mark.parametrize("height,width", [(132, 170), (121, 126)])  # padded to 136 x 176; to 128 x 128
def test_dynamic_degree_equals_vbench(tmp_path, checkpoints, monkeypatch, height, width):
    from easydict import EasyDict
    from vbench.dynamic_degree import DynamicDegree

    folder = write_pngs(tmp_path / "frames", moving_frames(5, height, width, step=4, seed=2))
    ref = DynamicDegree.__new__(DynamicDegree)  # VBench's class with its model given, not loaded from the network
    ref.args, ref.device, ref.model = EasyDict(), "cpu", raft_reference()
    scores = {}
    check = ref.check_move
    monkeypatch.setattr(ref, "check_move", lambda s: scores.setdefault("ref", list(s)) and check(s))
    moved = ref.infer(str(folder))
    raft = vb.load_raft(checkpoints["raft"])
    acc = vb.DynamicDegree(raft)
    for f in moving_frames(5, height, width, step=4, seed=2):
        acc.frame(f)
    np.testing.assert_allclose(acc.scores, scores["ref"], rtol=1e-5, atol=1e-4)
    assert acc.result()["dynamic_degree"] == moved
    assert ours(folder, ["dynamic_degree"], checkpoints)["dynamic_degree"] == moved


@needs_vbench
def test_converted_models_equal_the_originals(checkpoints):
    """The weight conversions alone: DINO's CLS feature with an interpolated table, CLIP's encode_image,
    RAFT's final flow; each against the original architecture on the same input."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 224, 336, generator=g)
    torch.testing.assert_close(vb.dino_features(vb.load_dino(checkpoints["dino"]), x), dino_reference()(x),
                               rtol=1e-5, atol=1e-5)
    x = torch.randn(2, 3, 224, 224, generator=g)
    torch.testing.assert_close(vb.clip_features(vb.load_clip_vision(checkpoints["clip"]), x),
                               clip_reference().encode_image(x), rtol=1e-5, atol=1e-5)
    a = torch.rand(1, 3, 128, 160, generator=g) * 255
    b = torch.roll(a, 3, dims=3)
    _, up = raft_reference()(a, b, iters=20, test_mode=True)
    mine = vb.load_raft(checkpoints["raft"])(2 * a / 255 - 1, 2 * b / 255 - 1, num_flow_updates=20)[-1]
    torch.testing.assert_close(mine, up, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------- independent truths

def test_a_static_video_is_fully_consistent(checkpoints):
    frame = moving_frames(1, 64, 96)[0]
    out = metrics.compute(np.stack([frame] * 5), metrics=["subject_consistency"],
                          vbench_models={"dino": vb.load_dino(checkpoints["dino"])})
    assert out["subject_consistency"] == pytest.approx(1.0, abs=1e-6)
    assert out["subject_consistency_pairs"] == 4


def test_a_scene_cut_lowers_subject_consistency():
    a = moving_frames(1, 64, 96, seed=4)[0]
    b = np.full_like(a, 40)  # another scene: a flat dark frame
    models = {"dino": vb.dino_from_state_dict(dino_reference(pos_std=0.02).state_dict())}
    same = metrics.compute(np.stack([a] * 6), metrics=["subject_consistency"], vbench_models=models)
    cut = metrics.compute(np.stack([a] * 3 + [b] * 3), metrics=["subject_consistency"], vbench_models=models)
    assert cut["subject_consistency"] < same["subject_consistency"] - 0.01


class ConstantFlow(torch.nn.Module):
    """A stand-in flow model whose flow is (dx, 0) everywhere: pair scores are known exactly."""

    def __init__(self, speeds):
        super().__init__()
        self.speeds = list(speeds)

    def forward(self, a, b, num_flow_updates=20):
        flow = torch.zeros(1, 2, *a.shape[-2:])
        flow[:, 0] = self.speeds.pop(0)
        return [flow]


@pytest.mark.parametrize("speeds, fps, expected", [
    ([0.0] * 8, None, False),                 # still
    ([7.0, 7.0, 0, 0, 0, 0, 0, 0], None, True),  # 9 frames need round(4 * 9 / 16) = 2 pairs above 6 * 256 / 256
    ([7.0, 0, 0, 0, 0, 0, 0, 0], None, False),   # one pair is not enough
    ([5.9] * 8, None, False),                 # below the threshold
])
def test_dynamic_degree_rule_on_known_flows(speeds, fps, expected):
    acc = vb.DynamicDegree(ConstantFlow(speeds), fps=fps)
    for _ in range(9):
        acc.frame(np.zeros((256, 320, 3), np.uint8))
    out = acc.result()
    assert acc.scores == pytest.approx(speeds)
    assert out["dynamic_degree"] is expected and out["dynamic_pairs_needed"] == 2


def test_dynamic_degree_samples_eight_frames_per_second():
    acc = vb.DynamicDegree(ConstantFlow([1.0] * 10), fps=24)  # every 3rd frame
    for _ in range(10):
        acc.frame(np.zeros((128, 128, 3), np.uint8))
    assert acc.interval == 3 and acc.sampled == 4 and len(acc.scores) == 3


def test_missing_weights_are_one_sentence(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"subject_consistency needs .*dino_vitbase16_pretrain.pth.*never "
                                                r"downloads.*--dino PATH"):
        vb.model_paths(["subject_consistency"], cache=tmp_path)


def test_vbench_layout_is_json(tmp_path):
    rows = [{"path": "a.mp4", "dynamic_degree": True}, {"path": "b.mp4", "dynamic_degree": False},
            {"path": "c.mp4", "error": "ValueError: broken"}]
    out = json.loads(json.dumps(vb.vbench_results(rows, ["dynamic_degree"])))
    assert out == {"dynamic_degree": [0.5, [{"video_path": "a.mp4", "video_results": True},
                                            {"video_path": "b.mp4", "video_results": False}]]}


# ---------------------------------------------------------------- command line

@needs_vbench
def test_eval_vbench_measures_every_video_it_can_and_writes_vbench_json(tmp_path, capsys):
    from samg_video import cli, media

    cache = tmp_path / "cache"
    for kind, rel in vb.VBENCH_FILES.items():
        (cache / rel).parent.mkdir(parents=True, exist_ok=True)
    torch.save(dino_reference().state_dict(), cache / vb.VBENCH_FILES["dino"])
    torch.save(clip_reference().state_dict(), cache / vb.VBENCH_FILES["clip"])
    torch.save({f"module.{k}": v for k, v in raft_reference().state_dict().items()}, cache / vb.VBENCH_FILES["raft"])
    clip = media.write_video(moving_frames(9, 128, 144, step=3), tmp_path / "a.mp4", fps=8)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    out = tmp_path / "vbench.json"
    code = cli.main(["eval", str(clip), str(broken), "--vbench", "--vbench-models", str(cache), "--metrics", "flicker",
                     "--vbench-json", str(out), "--json", str(tmp_path / "rows.json")])
    printed = capsys.readouterr().out
    assert code == 1 and "broken.mp4" in printed and "FAILED" in printed  # recorded, the other measured
    for dim in vb.DIMENSIONS:
        assert dim in printed.splitlines()[0]
    layout = json.loads(out.read_text())
    assert sorted(layout) == sorted(vb.DIMENSIONS)
    for dim in vb.DIMENSIONS:
        aggregate, per_video = layout[dim]
        assert [v["video_path"] for v in per_video] == [str(clip)]
        assert aggregate == pytest.approx(float(per_video[0]["video_results"]))
    summary = json.loads((tmp_path / "rows.json").read_text())["summary"]
    assert summary["failed"] == 1 and summary["mean"]["dynamic_degree"] == float(layout["dynamic_degree"][0])


def test_eval_vbench_without_weights_is_one_line_and_exit_2(tmp_path):
    import subprocess

    from samg_video import media

    clip = media.write_video(moving_frames(3, 32, 32), tmp_path / "a.mp4", fps=8)
    res = subprocess.run([sys.executable, "-m", "samg_video.cli", "eval", str(clip), "--vbench", "--vbench-models",
                          str(tmp_path / "none")], capture_output=True, text=True)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "never downloads" in lines[0] and "Traceback" not in res.stderr


# ---------------------------------------------------------------- sweeps and reports

def test_a_sweep_measures_vbench_dimensions_and_the_report_pairs_them(tmp_path):
    """Subject consistency (DINO needs no VBench package) through sweep and report: every item
    carries it, the weights' identity is part of every id, the report's paired table has it with
    n and a t interval equal to the manifest's own differences."""
    import yaml
    from scipy import stats

    from samg_video import cli
    from samg_video.manifest import read_manifest
    from samg_video.sweep import items_of

    cache = tmp_path / "cache"
    (cache / "dino_model").mkdir(parents=True)
    torch.save(dino_reference(pos_std=0.02).state_dict(), cache / vb.VBENCH_FILES["dino"])
    config = {"prompts": ["a red circle moving left", "a cyan square moving up"], "seeds": [0, 1], "steps": 2,
              "lpips": False, "reference": "cfg:6", "methods": ["cfg:6", "samg:2-6"],
              "vbench": ["subject_consistency"], "vbench_models": str(cache)}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(config))
    ids = {it.id for it in items_of(config)}
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "run")]) == 0
    rows = read_manifest(tmp_path / "run")
    assert len(rows) == 8 and all(0 < r["subject_consistency"] <= 1 + 1e-6 for r in rows)
    assert all(r["setting"]["vbench"]["dimensions"] == ["subject_consistency"] for r in rows)
    # other DINO weights: other ids (another sweep), as for another checkpoint
    other = tmp_path / "other"
    (other / "dino_model").mkdir(parents=True)
    torch.save(dino_reference(seed=1, pos_std=0.02).state_dict(), other / vb.VBENCH_FILES["dino"])
    assert not ids & {it.id for it in items_of({**config, "vbench_models": str(other)})}
    assert cli.main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "rep")]) == 0
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    pick = {m: {(r["prompt"], r["seed"]): r["subject_consistency"] for r in rows if r["method"]["method"] == m}
            for m in ("samg", "cfg")}
    d = np.array([pick["samg"][k] - pick["cfg"][k] for k in sorted(pick["cfg"])])
    mean, half = summary["paired"]["samg 2-6"]["subject_consistency"]
    assert mean == pytest.approx(d.mean(), abs=1e-12)
    assert half == pytest.approx(stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2, rel=1e-9)
    assert "subject consistency (diff.)" in (tmp_path / "rep" / "report.md").read_text()


def test_a_sweep_without_the_weights_stops_before_generating(tmp_path):
    import yaml

    from samg_video import cli

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"prompts": ["a red circle"], "seeds": [0], "steps": 2, "methods": ["cfg:6"],
                                    "vbench": True, "vbench_models": str(tmp_path / "none")}))
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()


def test_dynamic_degree_of_frames_too_small_for_raft_is_null_with_the_reason():
    acc = vb.DynamicDegree(ConstantFlow([]))
    for _ in range(4):
        acc.frame(np.zeros((32, 32, 3), np.uint8))
    out = acc.result()
    assert out["dynamic_degree"] is None and "128 px" in out["dynamic_degree_note"]


# ---------------------------------------------------------------- interpolation smoothness (not VBench's number)

class PairFlows(torch.nn.Module):
    """A stand-in flow model: (dx, 0) from the earlier frame to the later, (-dx, 0) back, alternately."""

    def __init__(self, dx: float):
        super().__init__()
        self.dx, self.calls = dx, 0

    def forward(self, a, b, num_flow_updates=20):
        flow = torch.zeros(1, 2, *a.shape[-2:])
        flow[:, 0] = self.dx if self.calls % 2 == 0 else -self.dx
        self.calls += 1
        return [flow]


def smoothness(frames, model) -> float:
    acc = vb.InterpolationSmoothness(model)
    for f in frames:
        acc.frame(f)
    return acc.result()["interpolation_smoothness"]


def test_a_constant_velocity_translation_is_interpolated_exactly_but_at_its_border():
    frames = moving_frames(7, 128, 160, step=3)  # content moves 3 px left per frame: 6 px between inputs
    score = smoothness(frames, PairFlows(-6.0))
    assert score > 1 - 3 / 160  # only the 3 columns entering at the border are guessed (replicated)
    jumpy = frames[[0, 4, 2, 6, 4, 1, 6]]  # the odd frames are not between their neighbours
    assert smoothness(jumpy, PairFlows(-6.0)) < score - 0.01


def test_interpolation_smoothness_of_a_still_video_is_one():
    frames = np.stack([moving_frames(1, 128, 128)[0]] * 5)
    assert smoothness(frames, PairFlows(0.0)) == 1.0


def test_each_model_metric_of_the_catalogue_is_built_by_vbench_and_writes_its_column():
    from samg_video import catalogue

    flows = {"raft": PairFlows(0.0)}
    for name in catalogue.NEEDS_MODEL:
        if catalogue.MODEL_OF[name] != "raft":  # DINO / CLIP: built and measured by the parity tests above
            continue
        (acc,) = vb.make([name], flows, fps=None)
        for _ in range(5):
            acc.frame(np.zeros((128, 128, 3), np.uint8))
        assert name in acc.result()
    assert set(catalogue.VBENCH) == set(vb.DIMENSIONS) and set(vb.MODEL_OF) == set(catalogue.NEEDS_MODEL)


def test_every_missing_weight_file_is_named_at_once_and_a_fifo_is_refused(tmp_path):
    import os

    with pytest.raises(FileNotFoundError) as err:
        vb.model_paths(list(vb.DIMENSIONS), cache=tmp_path)
    assert all(name in str(err.value) for name in ("dino_vitbase16_pretrain.pth", "ViT-B-32.pt", "raft-things.pth"))
    assert str(err.value).count("\n") == 0 and "--dino PATH" in str(err.value) and "--raft PATH" in str(err.value)
    fifo = tmp_path / "weights.pth"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is not a regular file"):
        vb.model_paths(["dynamic_degree"], {"raft": fifo})
    with pytest.raises(ValueError, match="is not a regular file"):
        vb.load_raft(fifo)


class Scripted(torch.nn.Module):
    """A TorchScript module whose own __setstate__ changes what it loads (code that runs on load)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(2))
        self.register_buffer("ran", torch.zeros(1))
        self.inner = torch.nn.Linear(2, 3).half()

    def forward(self, x):
        return self.inner((x * self.weight).half())


def test_a_torchscript_checkpoint_is_read_as_data(tmp_path):
    """A TorchScript archive (OpenAI CLIP's .pt is one) gives the tensors its state_dict() names,
    without running the archive's code: torch.jit.load runs a crafted __setstate__ (ran becomes 1),
    the reader never does; a checkpoint of another architecture, and one naming block 99999 in 2 KB,
    are one sentence naming the file, with nothing built."""
    plain = torch.jit.script(Scripted())
    plain.save(str(tmp_path / "plain.pt"))
    want = torch.jit.load(str(tmp_path / "plain.pt")).state_dict()
    got = vb._state_dict(tmp_path / "plain.pt")
    assert sorted(got) == sorted(want) and all(torch.equal(got[k], want[k]) and got[k].dtype == want[k].dtype
                                               for k in want)

    class Evil(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("ran", torch.zeros(1))

        def forward(self, x):
            return x

        @torch.jit.export
        def __getstate__(self) -> tuple[torch.Tensor, bool]:
            return (self.ran, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[torch.Tensor, bool]) -> None:
            self.ran = state[0] + 1
            self.training = state[1]

    torch.jit.script(Evil()).save(str(tmp_path / "evil.pt"))
    assert torch.jit.load(str(tmp_path / "evil.pt")).ran.item() == 1  # torch's loader runs the archive's code
    assert not any(torch.equal(v, torch.ones(1)) for v in vb._state_dict(tmp_path / "evil.pt").values())
    with pytest.raises(ValueError, match=r"evil.pt is not a DINO ViT checkpoint"):
        vb.load_dino(tmp_path / "evil.pt")
    torch.save({"pos_embed": torch.zeros(1, 5, 64), "blocks.99999.norm1.weight": torch.zeros(1)}, tmp_path / "deep.pth")
    assert (tmp_path / "deep.pth").stat().st_size < 4096
    with pytest.raises(ValueError, match=r"deep.pth is not a DINO ViT checkpoint: the checkpoint's blocks.N blocks"):
        vb.load_dino(tmp_path / "deep.pth")
    torch.save({"something": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other.pth is not a RAFT checkpoint"):
        vb.load_raft(tmp_path / "other.pth")
