"""Each method parameter is declared once (`guidance.base.param`): the command line's flags and help,
the ComfyUI node's inputs, the saveable guider's config, the method's own checks and
`samg-video methods` all read that declaration, so they list the same names, defaults and ranges (the
node's defaults differ only by the named "video" preset and its -1 'follow the sampler's cfg')."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from samg_video import guidance
from samg_video.guidance.base import parameters
from samg_video.guidance.samg import PRESETS, SAMG

SAMG_PARAMS = {p.name: p for p in parameters(SAMG)}


def test_the_command_lines_flags_are_typed_and_described_by_the_declarations():
    from samg_video.cli import PARAMETER_FLAGS, add_parameter_flags

    parser = argparse.ArgumentParser()
    add_parameter_flags(parser)
    actions = {a.dest: a for a in parser._actions if a.dest in PARAMETER_FLAGS}
    assert set(actions) == set(PARAMETER_FLAGS)
    for name, action in actions.items():
        owner, declared = guidance.REGISTRY_PARAMETERS[name]
        assert declared.help and declared.help in " ".join(action.help.split()), name
        assert (action.choices == list(declared.choices)) if declared.choices else action.type is float, name
    with pytest.raises(SystemExit):
        parser.parse_args(["--normalize", "pixel"])


def test_the_comfyui_node_shows_the_library_parameters_with_their_defaults_and_ranges():
    from comfyui_samg.nodes import DERIVED, NONE_AS, PAIRS, TYPED_FLOOR, WIDGETS, SAMGVideo

    inputs = SAMGVideo.INPUT_TYPES()["required"]
    preset = PRESETS["video"]
    for name in WIDGETS:
        p = SAMG_PARAMS[name]
        if name in PAIRS:
            low, high = (inputs[w][1] for w in PAIRS[name])
            assert (low["default"], high["default"]) == preset.get(name, p.default), name
            continue
        kind, spec = inputs[name]
        if name in ("w_min", "w_max"):
            assert spec["default"] == DERIVED and spec["min"] == TYPED_FLOOR < DERIVED and spec["max"] == p.hi
        elif p.choices:
            assert kind == list(p.choices) and spec["default"] == preset.get(name, p.default), name
        elif kind == "FLOAT":
            default = preset.get(name, p.default)
            assert spec["default"] == (NONE_AS[name] if default is None else default), name
            assert (spec["min"], spec["max"]) == (p.lo, p.hi if p.hi is not None else 1e6), name
        assert p.help in spec["tooltip"], name
    shown = {w for n in WIDGETS for w in PAIRS.get(n, (n,))}
    assert shown | {"model", "guide_frames", "skip"} == set(inputs)
    # what the node's defaults make is the library's SAMG with the named preset (the range from the cfg aside)
    made = guidance.create("samg", **{**SAMGVideo.params(), "w_min": 5.0, "w_max": 12.0}).to_dict()
    assert made == guidance.create("samg", **preset).to_dict()


def test_the_saveable_guiders_config_is_the_library_parameters():
    from samg_video.pipelines.guider import SAMGGuider

    guider = SAMGGuider()
    config = dict(guider.config)
    for name, p in SAMG_PARAMS.items():
        if name in ("interval", "outside"):  # the guider's start / stop replace them
            continue
        value = config[name]
        assert (list(value) if isinstance(value, tuple) else value) == (list(p.default) if isinstance(p.default, tuple)
                                                                          else p.default), name
    assert {"skip", "start", "stop", "layout"} <= set(config)
    with pytest.raises(ValueError, match="normalize must be one of 'clip', 'frame', got 'pixel'"):
        SAMGGuider(normalize="pixel")
    with pytest.raises(ValueError, match=r"w_max must be in \[0.0, 100.0\], got 1e\+300"):
        SAMGGuider(w_max=1e300)


def test_the_method_checks_and_the_methods_listing_read_the_declarations():
    for name, value, match in (("step_ema", 1.5, r"step_ema must be in \[0.0, 1.0\]"),
                               ("temporal_mode", "sideways", "temporal_mode must be one of"),
                               ("energy", "l3", "energy must be one of 'mean_sq', 'l2'")):
        with pytest.raises(ValueError, match=match):
            guidance.create("samg", **{name: value})
    listing = subprocess.run([sys.executable, "-m", "samg_video.cli", "methods"], capture_output=True, text=True,
                             check=True).stdout
    for p in SAMG_PARAMS.values():
        assert p.describe() in listing, p.name


@pytest.mark.parametrize("field,value,match", [
    ("token_grid", "abc", "token_grid must be three integers"),
    ("token_grid", [10 ** 9, 10 ** 9, 10 ** 9], "token_grid must be three integers"),
    ("enabled", "no", "enabled must be true or false"),
    ("start", "0.1", "start must be a number"),
    ("layout", "pixels", "layout must be"),
])
def test_a_guiders_own_fields_are_checked_one_by_one(field, value, match):
    """A hand-edited guider config (loaded with from_pretrained, or given in code): each of the guider's
    own fields is one sentence naming it, for SAMGGuider and GuidanceGuider alike."""
    from samg_video.pipelines.guider import GuidanceGuider, SAMGGuider

    for make in (SAMGGuider, GuidanceGuider):
        with pytest.raises(ValueError, match=match):
            make(**{field: value})
    with pytest.raises(ValueError, match="params must map"):
        GuidanceGuider(params="w_min=3")


@pytest.mark.parametrize("name", guidance.available())
def test_every_methods_parameters_are_declared_once_and_read_everywhere(name):
    """Every registered method declares each parameter once (`param`: help, default, range or choices):
    `samg-video methods` lists each declaration, the method refuses a value past its declared range
    or outside its choices in one sentence naming it, the ComfyUI guidance-method node takes each
    declared name in its options and refuses the same value at queue time (every method it offers),
    and GuidanceGuider (methods of two calls) makes the same method from the declared defaults."""
    from comfyui_samg.nodes import GuidanceMethod
    from samg_video.pipelines.guider import GuidanceGuider

    cls = type(guidance.create(name))
    declared = parameters(cls)
    offered = name in GuidanceMethod.INPUT_TYPES()["required"]["method"][0]  # pag: ComfyUI has no hook for it
    assert declared and all(p.help for p in declared), [p.name for p in declared if not p.help]
    for p in declared:
        if p.choices:
            bad, match = "sideways", f"{p.name} must be one of"
        elif p.lo is not None:
            bad, match = (p.lo - 1 if isinstance(p.default, int) and not isinstance(p.default, bool) else p.lo - 0.5,
                          f"{p.name} must be")
        elif p.hi is not None:
            bad, match = p.hi + 1, f"{p.name} must be"
        else:
            continue
        with pytest.raises(ValueError, match=match):
            guidance.create(name, **{p.name: bad})
        if offered:
            said = GuidanceMethod.VALIDATE_INPUTS(name, f"{p.name}={bad}")
            assert isinstance(said, str) and said.startswith("options: ") and p.name in said, (p.name, said)
    if cls.denoiser_calls() == 2:  # a guider cannot make a perturbed call (stg, slg, pag, samg+stg)
        made = GuidanceGuider(method=name, params={p.name: p.default for p in declared if p.default is not None})
        assert made.method.to_dict() == guidance.create(name).to_dict()


def test_the_methods_listing_describes_every_declared_parameter():
    listing = subprocess.run([sys.executable, "-m", "samg_video.cli", "methods"], capture_output=True, text=True,
                             check=True).stdout
    for name in guidance.available():
        for p in parameters(type(guidance.create(name))):
            assert p.describe() in listing, (name, p.name)
