"""The benchmark scripts that docs/benchmarks.md quotes run, on small latents."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def literal(path: Path, name: str):
    """The value of a module-level `name = <literal>` in a script (read, not imported: the
    benchmark re-executes itself at import)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(name)


def test_bench_guidance_prints_a_row_for_every_method():
    """`bench_guidance.py` (its per-method table) runs to the end and prints one row per method
    and shape, the CFG line's own row included."""
    script = BENCH / "bench_guidance.py"
    res = subprocess.run([sys.executable, str(script), "--tiny", "--repeats", "1", "--no-memory"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line.split("|")[1].strip() for line in res.stdout.splitlines() if line.startswith("| ")]
    methods = [row for row in rows if row != "method"]
    assert sorted(methods) == sorted(["pipeline CFG line", *literal(script, "METHODS")] * 2)


def test_bench_errors_answers_each_typed_mistake_with_one_line_and_exit_2():
    """`bench_errors.py` runs its ten typed-input mistakes through the installed command: each answers
    with exit code 2 and a `samg-video` error line (the times are the benchmark's, not asserted)."""
    script = BENCH / "bench_errors.py"
    res = subprocess.run([sys.executable, str(script), "--repeats", "1"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [line.split("|") for line in res.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 10
    assert all(r[3].strip() == "2" and "error:" in r[4] for r in rows), res.stdout
