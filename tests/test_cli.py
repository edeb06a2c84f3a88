"""The command line explains itself: a version, a description for every command, a help line for
every option, a denoising bar in a terminal and nothing but the result when piped."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

import pytest

from samg_video import cli


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"samg-video {cli.version()}" and cli.version()[0].isdigit()


def test_every_command_has_a_description_and_every_option_a_help_line():
    parser = cli.build_parser()
    assert "Thin" not in parser.description
    for name, sub in subcommands(parser).items():
        assert sub.description, f"`samg-video {name}` has no description"
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"`samg-video {name} {'/'.join(action.option_strings) or action.dest}` has no help"


GENERATE = [sys.executable, "-m", "samg_video.cli", "generate", "--prompt", "a red circle moving left",
            "--steps", "3", "--frames", "8", "--method", "cfg"]


def test_generate_shows_a_denoising_bar_in_a_terminal_only(tmp_path):
    env = dict(os.environ, COLUMNS="100")
    piped = subprocess.run(GENERATE + ["--out", str(tmp_path / "a.mp4")], capture_output=True, text=True, env=env,
                           timeout=300)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr  # nothing but the result on stdout
    assert piped.stdout.startswith(f"wrote {tmp_path / 'a.mp4'} in ") and "  method: cfg\n  scale: " in piped.stdout
    # `script` gives the command a terminal (of a real width: tqdm draws nothing in 0 columns)
    command = "stty cols 100 rows 30; " + shlex.join(GENERATE + ["--out", str(tmp_path / "b.mp4")])
    tty = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, env=env,
                         timeout=300)
    if tty.returncode != 0 and "script" in tty.stderr:
        pytest.skip(f"no pseudo-terminal here: {tty.stderr.strip()}")
    assert tty.returncode == 0, tty.stdout[-1000:]
    assert "denoising:" in tty.stdout and "/3 [" in tty.stdout, tty.stdout[-1000:]  # tqdm redraws at its own pace


def test_eval_says_when_frames_are_an_enlargement(tmp_path, capsys):
    """A clip written 4x enlarged (as generate writes the bundled model's) gets a note naming the
    --size that undoes it; a clip of its own resolution does not; headers are never cut."""
    import numpy as np

    from samg_video import media

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]  # smooth content, as generated frames are (noise would defeat the encoder)
    small = np.stack([np.stack([np.sin(xx / 3 + t) * 100 + 128, np.cos(yy / 4) * 100 + 128, (xx * 8 + yy * 4) % 256],
                               -1) for t in range(6)]).astype(np.uint8)
    big = media.write_video(small, tmp_path / "big.mp4", scale=4)
    native = media.write_video(rng.integers(0, 256, (6, 64, 64, 3), dtype=np.uint8), tmp_path / "native.mp4")
    assert cli.main(["eval", str(big), str(native), "--metrics", "flicker"]) == 0
    out = capsys.readouterr().out
    assert "note: big.mp4: frames look like a 4x nearest-neighbour enlargement of 16x16; `--size 16x16`" in out
    assert "native.mp4: frames look" not in out and "flicker_compensated" in out.splitlines()[0]
    assert cli.main(["eval", str(big), "--size", "16x16", "--metrics", "flicker"]) == 0
    assert "note:" not in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--image", "{png}"], "--image needs an image-to-video model; demo takes a prompt only"),
    (["--video", "{png}"], "--video needs a video-to-video model; demo takes a prompt only"),
    (["--strength", "0.5"], "--strength applies to video-to-video models"),
    (["--model", "wan2.1-i2v-14b-480p"], "is an image-to-video model: pass --image PATH"),
    (["--model", "wan2.1-v2v-1.3b", "--model-path", "{tmp}"], "is a video-to-video model: pass --video PATH"),
    (["--model", "wan2.1-v2v-1.3b", "--model-path", "{tmp}", "--video", "{mp4}", "--strength", "1e-9", "--steps", "2"],
     "--strength 1e-09 leaves 0 of 2 steps to denoise; use at least 0.5"),
])
def test_conditioning_inputs_are_checked_against_the_model(argv, message, tmp_path, capsys, monkeypatch):
    import samg_video.cli as cli_module
    import samg_video.generate as generate

    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "first.png")
    import numpy as np

    from samg_video import media

    media.write_video(np.zeros((9, 16, 16, 3), np.uint8), tmp_path / "source.mp4")
    monkeypatch.setattr(cli_module, "check_weights", lambda card, path: None)  # the check of the inputs comes first
    monkeypatch.setattr(generate, "load_target", lambda *a, **k: pytest.fail("loaded a model before checking"))
    argv = [a.format(png=tmp_path / "first.png", tmp=tmp_path, mp4=tmp_path / "source.mp4") for a in argv]
    rc = cli.main(["generate", "--prompt", "a red circle moving left", "--out", str(tmp_path / "x.mp4"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err


def test_a_long_panel_label_wraps_instead_of_being_cut():
    """`compare`'s panel labels: 'samg 1-3 temporal_sigma=1 skip error 0.3' above a 128-pixel clip was
    cut at 'temporal_si'; it wraps at spaces, every line within the width (OpenCV's own text size),
    every word kept, and labels shown side by side share one height."""
    import cv2
    import numpy as np

    from samg_video import viz

    text = "samg 1-3 temporal_sigma=1 skip error 0.3"
    lines = viz.label_lines(text, 122, 0.4)
    assert " ".join(lines) == text and len(lines) > 1
    assert all(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)[0][0] <= 122 for line in lines)
    frames = np.zeros((2, 128, 128, 3), np.uint8)
    assert viz.label(frames, "cfg 2", lines=len(lines)).shape == viz.label(frames, text).shape
