"""The README's examples run as written: every Python block, and its bundled-model commands."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_block_runs(index, tmp_path):
    code = blocks("python")[index]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_bundled_model_commands_run(tmp_path):
    """The README's commands on the bundled model (generate, then eval of its clip), with few steps."""
    lines = [line for block in blocks("bash") for line in block.splitlines()
             if line.startswith(".venv/bin/samg-video generate") or line.startswith("samg-video eval")]
    lines += [line.split("`")[1] for line in README.read_text().splitlines() if "`samg-video eval clip.mp4" in line]
    assert any("generate" in line for line in lines) and any(" eval " in line for line in lines)
    for line in lines:
        args = shlex.split(line)[1:] + (["--steps", "2"] if "generate" in line else [])
        done = subprocess.run([sys.executable, "-m", "samg_video.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, (line, done.stderr[-2000:])
    assert (tmp_path / "clip.mp4").is_file() and (tmp_path / "clip_field.mp4").is_file()
