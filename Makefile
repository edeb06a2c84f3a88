# Two commands from a fresh clone: `make demo` (a clip from the bundled model, CPU, no download) and
# `make test` (the suite CI runs). Each sets up .venv once (torch, the project with the tested pins,
# the test extras and the parity references) and reuses it; a changed pyproject.toml or
# constraints.txt sets it up again.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint setup

# scripts/setup.sh: once, under a lock (two makes at once set up one .venv), again after a change of
# pyproject.toml or constraints.txt or when .venv lost its python; TORCH_INDEX=URL picks torch's index
setup:
	@sh scripts/setup.sh $(VENV)

demo: setup
	$(BIN)/samg-video generate --prompt "a red circle moving left" --out clip.mp4 --save-scale-field

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
