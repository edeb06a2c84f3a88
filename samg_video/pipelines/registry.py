"""Offline loading of a registry model (its card: `samg_video.cards`).

A card names the Hub repo (and the names it had before, e.g. THUDM -> zai-org), the
diffusers pipeline class, dtypes (one for the pipeline, overrides per component),
default frames / resolution / steps / fps, the frame-count rule, the pipeline's own
CFG scale and the recommended SAMG setting.

Loading never downloads: weights come from a local folder (`model_path`) or the
Hugging Face cache. Every way that can fail (no weights, a folder holding another
model, a missing motion adapter, no CUDA) is one sentence naming the thing and the fix.

Defaults, one rule: a value the user does not give comes from the card. The dtype is
the card's on an accelerator and float32 on the CPU (half precision on a CPU is slow
and partly unsupported); a method's scale is the card's `guidance_scale` unless the
method is the card's recommended one, whose whole setting is used.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
from huggingface_hub import hf_hub_download, try_to_load_from_cache

from ..cards import MODELS_DIR, repos, resolve_dtype
from ..media import frames_hwc
from ..modelconfig import read_config


def download_hint(repo: str, include: list[str] | None = None) -> str:
    """The `hf download` command that fetches `repo` (only the diffusers folders where `include` says)."""
    patterns = "".join(f' "{p}"' for p in include or [])
    return f"hf download {repo}" + (f" --include{patterns}" if patterns else "")


def cached_repo(candidates: list[str], filename: str = "model_index.json") -> str | None:
    """The first repo id among `candidates` whose `filename` is in the local Hugging Face cache."""
    for repo in candidates:
        if isinstance(try_to_load_from_cache(repo, filename), str):
            return repo
    return None


def config_files(folder: Path) -> list[Path]:
    """The JSON configs a diffusers folder's components are built from: model_index.json, each
    component's config.json, its scheduler_config.json."""
    found = [folder / "model_index.json"]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        found += [sub / name for name in ("config.json", "scheduler_config.json") if (sub / name).exists()]
    return found


def check_configs(folder: Path) -> None:
    """A model folder's configs read as data before anything is built from them (`config_files`):
    regular files under MAX_CONFIG_BYTES that parse as JSON, with sane numbers (`check_numbers`).
    Each refusal is one sentence naming the file (and key). Every file of the folder and of its
    component folders must be a regular file (a link to one is fine): a FIFO would block a reader, a
    dangling link (a cache whose blob is gone) reads as a missing file."""
    for path in [*folder.iterdir(), *(q for sub in folder.iterdir() if sub.is_dir() for q in sub.iterdir())]:
        if not (path.is_file() or path.is_dir()):
            what = "a link to nothing" if path.is_symlink() and not path.exists() else "not a regular file"
            raise ValueError(f"{path} is {what}; a model folder holds plain files (restore it as downloaded).")
    for path in config_files(folder):
        read_config(path)


def folder_pipeline(folder: Path) -> str:
    """The pipeline class a diffusers folder holds (its model_index.json), or a clear error."""
    if not folder.is_dir():
        raise FileNotFoundError(f"--model-path {folder} is not a folder; pass the folder that holds model_index.json.")
    index = folder / "model_index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{folder} holds no model_index.json, so it is not a diffusers pipeline folder; "
                                "pass the folder that `hf download` made (the one with model_index.json).")
    check_configs(folder)
    try:
        return json.loads(index.read_text())["_class_name"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{index} is not a valid model_index.json ({err}).") from None


def weights_source(card: dict, model_path: str | None = None) -> str:
    """A local folder or a cached repo id that holds the card's pipeline; never downloads."""
    if model_path:
        held, needed = folder_pipeline(Path(model_path)), card.get("base_pipeline", card["pipeline"])
        if held != needed:
            article = "an" if needed[0] in "AEIOU" else "a"
            raise ValueError(f"{model_path} holds a {held} (model_index.json), but {card['name']} needs {article} "
                             f"{needed}; pass that model's folder or choose the model it holds.")
        return str(model_path)
    repo = cached_repo(repos(card))
    if repo is None:
        raise FileNotFoundError(
            f"Weights for {card['name']} ({card['repo']}) are not on this machine and samg-video never downloads; "
            f"fetch them once with `{download_hint(card['repo'], card.get('download_include'))}` "
            "or pass --model-path /folder/with/the/pipeline.")
    check_configs(Path(try_to_load_from_cache(repo, "model_index.json")).parent)  # the cached snapshot's folder
    return repo


# add-on components a card names beside its pipeline repo: card key -> (class, what it is, the flag for a folder)
ADDONS = {"motion_adapter": ("MotionAdapter", "motion adapter", "--adapter-path"),
          "controlnet": ("ControlNetModel", "ControlNet", "--controlnet-path")}


def addon_source(card: dict, key: str, path: str | None) -> str:
    """An add-on of the card (ADDONS: AnimateDiff's motion adapter, a ControlNet): the folder `path`,
    or the card's repo for it in the cache."""
    _, what, flag = ADDONS[key]
    if path:
        if not (Path(path) / "config.json").is_file():
            raise FileNotFoundError(f"{flag} {path} holds no {what} (no config.json); pass the folder of {card[key]}.")
        return str(path)
    repo = cached_repo([card[key]], "config.json")
    if repo is None:
        raise FileNotFoundError(
            f"The {what} of {card['name']} ({card[key]}) is not on this machine; fetch it "
            f"with `{download_hint(card[key])}` or pass {flag} /folder/with/the/{what.lower().replace(' ', '-')}.")
    return repo


LIBRARIES = ("diffusers", "transformers")  # where a model folder's components may come from


def component_class(source: str, name: str):
    """The class model_index.json names for component `name`, from diffusers or transformers only:
    a model folder is data, and a library it names that is neither is refused, never imported
    (a folder could name a module of its own, which the working directory would make importable)."""
    index = Path(source) / "model_index.json" if Path(source).is_dir() else \
        Path(hf_hub_download(source, "model_index.json", local_files_only=True))
    entry = json.loads(index.read_text()).get(name)
    if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry)):
        raise ValueError(f"{index} gives no [library, class] for the component {name!r}.")
    library, cls = entry
    if library not in LIBRARIES:
        raise ValueError(f"{index} names the library {library!r} for {name!r}; samg-video loads components from "
                         f"{' and '.join(LIBRARIES)} only, so this folder is refused.")
    found = getattr(importlib.import_module(library), cls, None)
    if not isinstance(found, type):
        raise ValueError(f"{index} names {library}.{cls} for {name!r}, which {library} does not have.")
    return found


def extra_components(card: dict, source: str, dtype: str, adapter_path: str | None,
                     controlnet_path: str | None = None) -> dict:
    """Components the card loads its own way: per-component dtypes, a scheduler preset, add-ons (a
    motion adapter, a ControlNet)."""
    import diffusers
    import torch

    extra = {}
    scheme = card.get("component_dtypes", {}) if dtype == card.get("dtype") else {}  # the card's precision only
    for name, component_dtype in scheme.items():
        if component_dtype != dtype:
            extra[name] = component_class(source, name).from_pretrained(
                source, subfolder=name, dtype=getattr(torch, component_dtype), local_files_only=True)
    if "scheduler" in card:
        preset = dict(card["scheduler"])
        cls = getattr(diffusers, preset.pop("class"))
        extra["scheduler"] = cls.from_pretrained(source, subfolder="scheduler", local_files_only=True, **preset)
    paths = {"motion_adapter": adapter_path, "controlnet": controlnet_path}
    for key, (cls, _, _) in ADDONS.items():
        if key in card:
            extra[key] = getattr(diffusers, cls).from_pretrained(
                addon_source(card, key, paths[key]), dtype=getattr(torch, dtype), local_files_only=True)
    return extra


def check_requirements(card: dict) -> None:
    """The packages the card's pipeline imports on the way (`requires`: LTX-2 image-to-video's PyAV),
    checked before anything loads: one sentence naming what to install."""
    import importlib.util

    missing = [name for name in card.get("requires", []) if importlib.util.find_spec(name) is None]
    if missing:
        raise ModuleNotFoundError(f"{card['name']} needs {' and '.join(missing)}, which {card['pipeline']} imports "
                                  f"while it runs; install it with `pip install {' '.join(missing)}`.")


def load_model(card: dict, model_path: str | None = None, device: str = "cpu", dtype: str | None = None,
               cpu_offload: bool = False, vae_tiling: bool = False, adapter_path: str | None = None,
               controlnet_path: str | None = None):
    """The card's diffusers pipeline from local files only (a folder, or the Hub cache; a bundled
    model from the package's own folder `models/{bundled}`, or `model_path`)."""
    import diffusers
    import torch

    if card.get("bundled"):
        from ..demo.pipeline import load_pipeline

        return load_pipeline(model_path or MODELS_DIR / card["bundled"], device)
    check_requirements(card)
    dtype = resolve_dtype(card, dtype, device)
    source = weights_source(card, model_path)
    extra = extra_components(card, source, dtype, adapter_path, controlnet_path)
    try:
        pipe = getattr(diffusers, card["pipeline"]).from_pretrained(source, dtype=getattr(torch, dtype),
                                                                    local_files_only=True, **extra)
    except (RuntimeError, ValueError) as err:  # transformers / diffusers: a weight's shape is not its config's
        if not any(sign in str(err) for sign in ("mismatched", "size mismatch", "ignore_mismatched_sizes")):
            raise
        name = failed_component(err)
        which = f"the {name} component's weights ({name}/)" if name else "a component's weights"
        raise ValueError(f"{source}: {which} do not have the shapes its config.json gives (a config from another "
                         "model, or damaged weights); nothing was generated. Restore the folder as downloaded, or "
                         "pass the folder of the model these files belong to.") from None
    if (vae_tiling or card.get("vae_tiling")) and hasattr(pipe, "vae"):  # Allegro's VAE decodes tiled only
        pipe.vae.enable_tiling()
    if cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def failed_component(err: BaseException) -> str | None:
    """The pipeline component whose loading raised `err`: the `name` argument of diffusers' own
    `load_sub_model` frame in the traceback (transformers' shape error does not name it), or None."""
    import traceback

    for frame, _ in traceback.walk_tb(err.__traceback__):
        if frame.f_code.co_name == "load_sub_model" and isinstance(frame.f_locals.get("name"), str):
            return frame.f_locals["name"]
    return None


def frames_of(output, index: int = 0) -> np.ndarray:
    """Clip `index` of a pipeline output as (F, H, W, 3) floats in [0, 1] (an image is one frame)."""
    if hasattr(output, "frames"):
        clip = np.asarray(output.frames[index], dtype=np.float32)
    else:
        clip = np.asarray(output.images[index], dtype=np.float32)[None]
    if not np.isfinite(clip).all():  # NaN weights or inputs anywhere upstream (VAE, text encoder, denoiser)
        raise ValueError("The pipeline's output holds NaN or infinite values: a component's weights (VAE, text "
                         "encoder, denoiser) or its inputs are not finite; nothing was written.")
    return frames_hwc(clip)
