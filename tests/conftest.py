from pathlib import Path

import pytest

import standins


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def standin_root(tmp_path_factory) -> Path:
    """Every registry model's stand-in folder (tests/standins) and AnimateDiff's motion adapter, built once."""
    root = tmp_path_factory.mktemp("standins")
    for name in standins.NAMES:
        standins.write(name, root / name)
    standins.write_motion_adapter(root / "motion-adapter")
    standins.write_controlnet(root / "controlnet")
    return root


def load_standin(name: str, root: Path, dtype: str = "float32", device: str = "cpu"):
    """A stand-in loaded the way real weights are (`load_model` from its folder), progress bar off."""
    from samg_video.cards import card
    from samg_video.pipelines.registry import load_model

    adapter = str(root / "motion-adapter") if name.startswith("animatediff") else None
    controlnet = str(root / "controlnet") if "controlnet" in card(name) else None
    pipe = load_model(card(name), str(root / name), device, dtype, adapter_path=adapter, controlnet_path=controlnet)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> str:
    """A tiny random-weight CLIP saved like openai/clip-vit-base-patch32."""
    return str(standins.write_clip(tmp_path_factory.mktemp("clip")))
