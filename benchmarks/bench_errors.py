"""How long a typed-input error takes to answer: ten mistakes a user makes at the command line,
each run as `samg-video ...` in a fresh process (what the user waits for), median of --repeats.
Each must answer with one line and exit code 2; the goal is <= 1 s each on an idle machine
(checked before torch and diffusers load).

    python benchmarks/bench_errors.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a red circle moving left"

CASES = [  # (what the user did, the arguments; {tmp} is a scratch folder)
    ("a misspelled prompt word", ["generate", "--prompt", "a red circel moving left", "--out", "{tmp}/a.mp4"]),
    ("a skip policy that skips nothing", ["generate", "--prompt", PROMPT, "--skip", "every:1", "--out", "{tmp}/b.mp4"]),
    ("an unknown output format", ["generate", "--prompt", PROMPT, "--out", "{tmp}/clip.xyz"]),
    ("a SAMG range upside down", ["compare", "--prompt", PROMPT, "--methods", "cfg:2", "samg:3-1",
                                 "--out", "{tmp}/cmp"]),
    ("a guidance scale out of range", ["generate", "--prompt", PROMPT, "--w-max", "1e9", "--out", "{tmp}/c.mp4"]),
    ("an unknown model", ["generate", "--prompt", PROMPT, "--model", "wan9", "--out", "{tmp}/d.mp4"]),
    ("a flag prefix", ["generate", "--prompt", PROMPT, "--frame", "8", "--out", "{tmp}/e.mp4"]),
    ("a video that does not exist", ["eval", "{tmp}/missing.mp4"]),
    ("a sweep config that does not exist", ["sweep", "{tmp}/missing.yaml", "--out", "{tmp}/run"]),
    ("a report of an empty folder", ["report", "{tmp}"]),
]


def answer(argv: list[str]) -> tuple[float, int, str]:
    """(seconds, exit code, last stderr line) of one `samg-video` run."""
    start = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "samg-video"), *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, done.returncode, (done.stderr.strip().splitlines() or [""])[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"{args.repeats} runs each, median; python {sys.version.split()[0]}")
    print("| mistake | seconds | exit | first words of the answer |")
    print("|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for what, argv in CASES:
            argv = [a.format(tmp=tmp) for a in argv]
            runs = [answer(argv) for _ in range(args.repeats)]
            seconds = statistics.median(r[0] for r in runs)
            print(f"| {what} | {seconds:.2f} | {runs[-1][1]} | {runs[-1][2].replace(str(Path(tmp)), 'TMP')[:90]} |",
                  flush=True)


if __name__ == "__main__":
    main()
