"""A non-editable install works on its own: the wheel carries the model cards, the bundled
model's weights and the prompt suites, and `samg-video generate` runs from another folder."""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_generates(tmp_path):
    source, dist = tmp_path / "source", tmp_path / "dist"  # a clean copy: no build/ left over from earlier builds
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "runs", "*.egg-info", "evaluation",
                                                                "__pycache__", "tests", "docs"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(source)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("samg_video-*.whl"))
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies come from this interpreter's site-packages (appended after the fresh venv's own,
    # without running its .pth files, so an editable samg_video there stays invisible)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import samg_video; print(samg_video.__file__)"], check=True,
                           capture_output=True, text=True, cwd=work).stdout.strip()
    assert Path(where).is_relative_to(site), where
    cli = env_dir / "bin" / "samg-video"
    if not cli.exists():  # pip --target does not write console scripts: call the entry point as it would
        cli.write_text(f"#!{python}\nfrom samg_video.cli import main\nraise SystemExit(main())\n")
        cli.chmod(0o755)
    done = subprocess.run([str(cli), "generate", "--prompt", "a red circle moving left", "--steps", "4",
                           "--out", "clip.gif"],
                          capture_output=True, text=True, cwd=work)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (work / "clip.gif").is_file()
    models = subprocess.run([str(cli), "models"], capture_output=True, text=True, cwd=work)
    assert models.returncode == 0 and "wan2.1-t2v-1.3b" in models.stdout.lower(), models.stdout
    sweep_prompts = subprocess.run([str(python), "-c", "from samg_video.prompts import load_prompts, resolve; "
                                    "print(len(load_prompts(resolve('temporal'))))"],
                                   capture_output=True, text=True, cwd=work)
    assert sweep_prompts.stdout.strip() == "70", sweep_prompts.stderr[-2000:]
    from samg_video import media

    assert np.asarray(media.read_video(work / "clip.gif")).shape[0] == 8


def library_dependencies() -> list[str]:
    """The library's declared dependencies as pip reads them: pyproject.toml's dynamic `dependencies`,
    from the file its [tool.setuptools.dynamic] names (comment lines left out)."""
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "dependencies" in pyproject["project"]["dynamic"] and "dependencies" not in pyproject["project"]
    (name,) = pyproject["tool"]["setuptools"]["dynamic"]["dependencies"]["file"]
    lines = [line.split("#")[0].strip() for line in (ROOT / name).read_text().splitlines()]
    return [line for line in lines if line]


def test_declared_ranges_admit_the_tested_set_and_a_users_torch():
    """pyproject.toml declares ranges, constraints.txt the tested pins: every pin lies in its
    range (so `pip install -c constraints.txt` resolves), the torch range admits the torch a
    ComfyUI environment runs (2.7 to 2.9) so installing the project keeps it, and the README's
    and the set-up script's (which `make`, and so CI, runs) install commands use the constraints."""
    import tomllib

    from packaging.requirements import Requirement

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ranges = {Requirement(r).name.lower(): Requirement(r).specifier
              for r in library_dependencies() + declared["optional-dependencies"]["test"]}
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert set(ranges) <= {name.lower() for name in pins}
    for name, version in pins.items():
        assert version in ranges[name.lower()], (name, version, str(ranges[name.lower()]))
    assert all(v in ranges["torch"] for v in ("2.7.0", "2.8.0", "2.9.1")) and not any(
        "==" in str(spec) for spec in ranges.values())
    for command_file in ("README.md", "scripts/setup.sh"):
        assert "-c constraints.txt" in (ROOT / command_file).read_text(), command_file
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make lint" in ci and "make test" in ci  # CI sets up exactly as the README's `make test` does


def stub_environment(folder: Path, replace: dict[str, tuple[str, list[str]]], drop: frozenset = frozenset()) -> Path:
    """A venv whose site-packages holds the metadata (not the code) of every distribution this
    interpreter has but those in `drop`, with `replace` = {name: (version, requires)} in place of
    some: what pip's resolver sees of an environment, so `pip install` can be resolved against it
    offline."""
    from importlib import metadata

    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    seen = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name in seen or name in ("samg-video", "pip") or name in drop:
            continue
        seen.add(name)
        version, text = dist.version, dist.read_text("METADATA")
        if name in replace:
            version, requires = replace[name]
            text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
                f"Requires-Dist: {r}\n" for r in requires)
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(text)
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")
    return python


def resolve(python: Path, requirements: list[str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--dry-run", "--no-index",
                           "--quiet", "--report", "-", *extra, *requirements], capture_output=True, text=True)


def test_pip_install_keeps_a_users_torch(tmp_path):
    """pip, resolving the project's declared dependencies (pyproject.toml) in an environment that
    holds a ComfyUI user's torch 2.8.0 and torchvision 0.23.0 (and every other package this
    environment has), installs nothing and replaces neither; the same run offline fails as soon
    as anything would have to be replaced, as it does with the exact pins of constraints.txt."""
    import json

    declared = library_dependencies()
    python = stub_environment(tmp_path / "user", {"torch": ("2.8.0", []),
                                                  "torchvision": ("0.23.0", ["torch==2.8.0"])})
    kept = resolve(python, declared)
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["install"] == []
    pinned = resolve(python, declared, "-c", str(ROOT / "constraints.txt"))
    assert pinned.returncode != 0 and "torch" in pinned.stderr  # the pins would replace it: offline, no candidate


def test_pip_install_into_an_environment_with_torch_alone_keeps_it(tmp_path):
    """An environment with a torch and no torchvision: resolving the declared dependencies installs
    nothing (no torchvision, which would bring a torch of its own); RAFT and VBench's dimensions
    are the `vision` extra, which needs torchvision."""
    import json
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    python = stub_environment(tmp_path / "user", {"torch": ("2.8.0", [])}, drop=frozenset({"torchvision", "lpips"}))
    kept = resolve(python, library_dependencies())
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["install"] == []
    assert [r.split(">")[0] for r in project["optional-dependencies"]["vision"]] == ["torchvision"]


def test_setup_runs_once_under_a_lock_and_again_when_python_is_gone(tmp_path):
    """scripts/setup.sh (what `make` runs) with python3 and pip stood in by scripts that log their calls
    and take a second each: two set-ups started together install once (the second waits on the lock,
    then finds the set-up done); a .venv whose python was deleted is set up again."""
    import time

    if shutil.which("flock") is None:
        pytest.skip("the lock needs util-linux's flock")
    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "log"
    (fake / "python3").write_text(f"""#!/bin/sh
# python3 -m venv DIR: a venv whose pip logs its calls
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho pip "$@" >> {log}\\nsleep 1\\n' > "$3/bin/pip"
printf '#!/bin/sh\\n' > "$3/bin/python"
chmod +x "$3/bin/pip" "$3/bin/python"
echo venv >> {log}
""")
    (fake / "python3").chmod(0o755)
    work = tmp_path / "clone"
    work.mkdir()
    for name in ("pyproject.toml", "library-requirements.txt", "constraints.txt"):
        (work / name).write_text("")
    time.sleep(0.01)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    run = lambda: subprocess.Popen(["sh", str(ROOT / "scripts" / "setup.sh"), str(work / ".venv")],  # noqa: E731
                                   cwd=work, env=env)
    first, second = run(), run()
    assert first.wait(60) == 0 and second.wait(60) == 0
    lines = log.read_text().splitlines()
    assert lines.count("venv") == 1 and len([x for x in lines if x.startswith("pip install -q --no-deps vbench")]) == 1
    assert (work / ".venv" / ".samg-video-installed").is_file()
    (work / ".venv" / "bin" / "python").unlink()
    assert run().wait(60) == 0 and log.read_text().splitlines().count("venv") == 2
    assert (work / ".venv" / "bin" / "python").is_file()
