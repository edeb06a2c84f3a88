# Two commands from a fresh clone: `make demo` (a clip from the bundled model, CPU, no download) and
# `make test` (the suite CI runs). Each sets up .venv once (torch, the project with the tested pins,
# the test extras and the parity references) and reuses it; a changed pyproject.toml,
# library-requirements.txt or constraints.txt sets it up again. `make quick`: a part of the suite
# that answers in a few minutes (declarations, settings, the world's prompts, guidance, skip policies,
# the ComfyUI contract).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test quick lint setup

# scripts/setup.sh: once, under a lock (two makes at once set up one .venv), again after a change of
# pyproject.toml or constraints.txt or when .venv lost its python; TORCH_INDEX=URL picks torch's index
setup:
	@sh scripts/setup.sh $(VENV)

demo: setup
	$(BIN)/samg-video generate --prompt "a red circle moving left" --out clip.mp4 --save-scale-field

test: setup
	$(BIN)/python -m pytest

QUICK := tests/test_declarations.py tests/test_settings.py tests/test_world.py tests/test_guidance.py tests/test_skip.py \
         tests/test_comfyui.py

quick: setup
	$(BIN)/python -m pytest $(QUICK)

lint: setup
	$(BIN)/ruff check .
