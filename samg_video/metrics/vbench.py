"""VBench's temporal dimensions, computed as VBench computes them, from local weights, streaming.

Huang et al., "VBench: Comprehensive Benchmark Suite for Video Generative Models" (CVPR 2024);
the code followed is the `vbench` package 0.1.5 (`vbench/subject_consistency.py`,
`background_consistency.py`, `dynamic_degree.py`, `utils.py`). Frames are uint8 RGB (H, W, 3),
taken as float 0..255 as VBench's `load_video` returns them.

subject_consistency     DINO ViT-B/16 (facebookresearch/dino `dino_vitb16`). Each frame: resize
                        the short side to 224 (bilinear, no antialias, no crop), /255, ImageNet
                        normalisation; feature = the CLS token after the final norm, with DINO's own
                        position-embedding interpolation for the non-square grid; L2-normalised.
                            s = 1/(T-1) sum_{t>=1} (max(0, cos(f_t, f_{t-1})) + max(0, cos(f_t, f_0))) / 2
background_consistency  the same with CLIP ViT-B/32 image embeddings (OpenAI CLIP's `encode_image`),
                        preprocessed by VBench's `clip_transform(224)`: resize the short side to 224
                        (bicubic, no antialias), centre crop 224, /255, CLIP normalisation.
dynamic_degree          RAFT (raft-things, 20 iterations) on frames taken every round(fps / 8) frames
                        (every frame without a frame rate), padded to a multiple of 8 as RAFT's
                        InputPadder does. A pair's score is the mean of the largest 5 % of flow
                        magnitudes over the padded frame; the video is dynamic (True) when at least
                        round(4 n / 16) of the n sampled frames' pairs score above 6 short_side / 256.

VBench's aggregate of a consistency dimension weighs videos by their frame pairs (sum of the
per-video sums over all pairs); of dynamic_degree it is the fraction of dynamic videos
(`vbench_results`).

Weights are never downloaded; each loader takes what a user has: the files VBench itself
caches (`~/.cache/vbench/dino_model/dino_vitbase16_pretrain.pth`, `clip_model/ViT-B-32.pt`,
`raft_model/models/raft-things.pth`), or a transformers folder (`facebook/dino-vitb16`,
`openai/clip-vit-base-patch32`), or torchvision's RAFT-large file (its C_T_V1 weights are
raft-things; C_T_V2 are torchvision's own and give other numbers).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import catalogue
from ..flow import torchvision
from ..modelconfig import read_config
from .base import Metric

FRAMES_PER_BATCH = 16
DINO_MEAN, DINO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
VBENCH_FILES = {"dino": "dino_model/dino_vitbase16_pretrain.pth", "clip": "clip_model/ViT-B-32.pt",
                "raft": "raft_model/models/raft-things.pth"}
GET = {
    "dino": "DINO ViT-B/16 for subject_consistency: dino_vitbase16_pretrain.pth "
            "(https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth) or the "
            "transformers folder of facebook/dino-vitb16 (`hf download facebook/dino-vitb16 --local-dir DIR`)",
    "clip": "CLIP ViT-B/32 for background_consistency: OpenAI's ViT-B-32.pt (what `clip.load('ViT-B/32')` and "
            "VBench download) or the transformers folder of openai/clip-vit-base-patch32",
    "raft": "RAFT for dynamic_degree: raft-things.pth from RAFT's models.zip "
            "(https://dl.dropboxusercontent.com/s/4j4z58wuv8o0mfz/models.zip, what VBench downloads) or torchvision's "
            "raft_large_C_T_V1 file",
}
DIMENSIONS = catalogue.VBENCH
EXTRA = tuple(n for n in catalogue.NEEDS_MODEL if n not in DIMENSIONS)  # another interpolator: not a VBench number
MODEL_OF = catalogue.MODEL_OF


def vbench_cache() -> Path:
    """VBench's own cache folder: $VBENCH_CACHE_DIR, else ~/.cache/vbench."""
    return Path(os.environ.get("VBENCH_CACHE_DIR") or Path.home() / ".cache" / "vbench")


def model_paths(dimensions, paths: dict | None = None, cache: str | Path | None = None) -> dict[str, Path]:
    """{"dino" | "clip" | "raft": path} for the requested dimensions: the given path, else the file VBench
    caches under `cache` (default `vbench_cache()`). Missing ones raise FileNotFoundError, one sentence."""
    paths, root = dict(paths or {}), Path(cache) if cache else vbench_cache()
    out, missing = {}, []
    for dim in dimensions:
        kind = MODEL_OF[dim]
        path = Path(paths.get(kind) or root / VBENCH_FILES[kind])
        if path.exists() and not (path.is_file() or (path.is_dir() and kind != "raft")):
            raise ValueError(f"{path} is not a regular file (or, for DINO and CLIP, a transformers folder).")
        if not path.exists():
            flag = {"dino": "--dino", "clip": "--clip-vision", "raft": "--raft"}[kind]
            missing.append((f"{dim} needs {path}", f"{GET[kind]}, and pass it with {flag} PATH"))
        out[kind] = path
    if missing:  # every missing file at once
        needs, gets = "; ".join(m[0] for m in missing), "; ".join(m[1] for m in missing)
        raise FileNotFoundError(f"{needs}, which {'does' if len(missing) == 1 else 'do'} not exist; samg-video never "
                                f"downloads. Get {gets} (or name VBench's cache folder with --vbench-models).")
    return out


# ---------------------------------------------------------------- weights

STORAGES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16,
            "DoubleStorage": torch.float64, "LongStorage": torch.int64, "IntStorage": torch.int32,
            "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
            "BoolStorage": torch.bool}


class ScriptObject:
    """A TorchScript object's pickled attributes, kept as data: the archive's own code (its
    `__setstate__`) never runs."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"__state__": state})


def is_torchscript(path: Path) -> bool:
    """Whether a checkpoint is a TorchScript archive (a zip holding compiled code)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())


def torchscript_tensors(path: Path) -> dict:
    """{name: tensor} of a TorchScript archive's modules (as its `state_dict()` names them), read
    from its data.pkl with an unpickler that builds tensors and plain attribute holders only."""
    import collections
    import io
    import pickle
    import zipfile

    with zipfile.ZipFile(path) as archive:
        pickled = next(n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1)
        root = pickled.split("/")[0]

        class Reader(pickle.Unpickler):
            def find_class(self, module, name):
                if module == "__torch__" or module.startswith("__torch__."):
                    return ScriptObject
                if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
                    return getattr(torch._utils, name)
                if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist",
                                                              "build_tensorlist", "restore_type_tag"):
                    import importlib  # typed lists and type tags: data in, data out

                    return getattr(importlib.import_module("torch.jit._pickle"), name)
                if (module, name) == ("collections", "OrderedDict"):
                    return collections.OrderedDict
                if module == "torch" and name in STORAGES:
                    return name
                raise pickle.UnpicklingError(f"{module}.{name} is neither a tensor nor a module attribute")

            def persistent_load(self, pid):
                _, kind, key, _, _ = pid
                data = bytearray(archive.read(f"{root}/data/{key}"))
                raw = torch.UntypedStorage.from_buffer(data, dtype=torch.uint8) if data else torch.UntypedStorage(0)
                return torch.storage.TypedStorage(wrap_storage=raw, dtype=STORAGES[kind], _internal=True)

        obj = Reader(io.BytesIO(archive.read(pickled))).load()
    out, todo, seen = {}, [("", obj)], set()
    while todo:  # the module tree, breadth first, each object once
        prefix, node = todo.pop(0)
        if id(node) in seen or not isinstance(node, ScriptObject):
            continue
        seen.add(id(node))
        for key, value in node.__dict__.items():
            if isinstance(value, torch.Tensor):
                out[prefix + key] = value
            elif isinstance(value, ScriptObject):
                todo.append((f"{prefix}{key}.", value))
    return out


def _state_dict(path: Path) -> dict:
    """A checkpoint file's tensors, read as data: a plain state dict (`torch.load(weights_only=True)`),
    or a TorchScript archive (OpenAI CLIP's .pt) read without running its code. Only regular files."""
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file; a checkpoint is a file of weights.")
    if is_torchscript(path):
        try:
            sd = torchscript_tensors(path)
        except Exception as err:  # noqa: BLE001  (any malformed archive is one sentence)
            raise ValueError(f"{path} is a TorchScript archive whose tensors cannot be read ({err}).") from None
    else:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"{path} is not a PyTorch checkpoint of tensors ({type(err).__name__}).") from None
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, not a dict of tensors.")
    return {k.removeprefix("module."): v for k, v in sd.items()}


MAX_BLOCKS = 64  # deeper than any ViT VBench's dimensions use (12); a bound before anything is allocated


def block_count(sd: dict, prefix: str, field: int) -> int:
    """The number of transformer blocks a state dict holds (keys `prefix{i}.`): every index from 0,
    at most MAX_BLOCKS, else one sentence (a crafted key such as blocks.99999 builds nothing)."""
    found = {k.split(".")[field] for k in sd if k.startswith(prefix)}
    indices = sorted(int(i) for i in found if i.isdigit())
    if not indices or indices != list(range(len(indices))) or len(indices) > MAX_BLOCKS:
        shown = f"{indices[:3]}...{indices[-1:]}" if len(indices) > 4 else str(indices)
        raise ValueError(f"the checkpoint's {prefix}N blocks are {shown}, not 0..N-1 with N <= {MAX_BLOCKS}.")
    return len(indices)


def built(build, path: Path, what: str):
    """`build(_state_dict(path))`, with a missing or malformed tensor as one sentence naming the file."""
    sd = _state_dict(path)
    try:
        return build(sd)
    except KeyError as err:
        raise ValueError(f"{path} is not a {what} checkpoint: it has no {err.args[0]!r}.") from None
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is not a {what} checkpoint: {str(err).splitlines()[0]}") from None


def dino_from_state_dict(sd: dict):
    """A transformers `ViTModel` holding a facebookresearch/dino VisionTransformer's weights (any size:
    width from the embeddings, depth from the blocks, heads = width / 64 as in every DINO ViT)."""
    from transformers import ViTConfig, ViTModel

    width = sd["pos_embed"].shape[-1]
    depth = block_count(sd, "blocks.", 1)
    patch = sd["patch_embed.proj.weight"].shape[-1]
    grid = int(math.isqrt(sd["pos_embed"].shape[1] - 1))
    config = ViTConfig(hidden_size=width, num_hidden_layers=depth, num_attention_heads=width // 64,
                       intermediate_size=sd["blocks.0.mlp.fc1.weight"].shape[0], patch_size=patch,
                       image_size=grid * patch, layer_norm_eps=1e-6, qkv_bias=True, hidden_act="gelu")
    out = {"embeddings.cls_token": sd["cls_token"], "embeddings.position_embeddings": sd["pos_embed"],
           "embeddings.patch_embeddings.projection.weight": sd["patch_embed.proj.weight"],
           "embeddings.patch_embeddings.projection.bias": sd["patch_embed.proj.bias"],
           "layernorm.weight": sd["norm.weight"], "layernorm.bias": sd["norm.bias"]}
    model = ViTModel(config, add_pooling_layer=False)
    flat = "layers.0.attention.q_proj.weight" in model.state_dict()  # transformers 5's names, else 4.x's
    names = ({"q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj", "proj": "attention.o_proj",
              "fc1": "mlp.fc1", "fc2": "mlp.fc2", "layer": "layers."} if flat else
             {"q": "attention.attention.query", "k": "attention.attention.key", "v": "attention.attention.value",
              "proj": "attention.output.dense", "fc1": "intermediate.dense", "fc2": "output.dense",
              "layer": "encoder.layer."})
    for i in range(depth):
        b, o = f"blocks.{i}.", f"{names['layer']}{i}."
        for part in ("weight", "bias"):
            q, k, v = sd[b + f"attn.qkv.{part}"].chunk(3)
            out |= {o + f"{names['q']}.{part}": q, o + f"{names['k']}.{part}": k, o + f"{names['v']}.{part}": v,
                    o + f"{names['proj']}.{part}": sd[b + f"attn.proj.{part}"],
                    o + f"layernorm_before.{part}": sd[b + f"norm1.{part}"],
                    o + f"layernorm_after.{part}": sd[b + f"norm2.{part}"],
                    o + f"{names['fc1']}.{part}": sd[b + f"mlp.fc1.{part}"],
                    o + f"{names['fc2']}.{part}": sd[b + f"mlp.fc2.{part}"]}
    model.load_state_dict(out, strict=True)
    return model.eval()


def clip_vision_from_state_dict(sd: dict):
    """A transformers `CLIPVisionModelWithProjection` holding OpenAI CLIP's image tower (`visual.*`)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    sd = {k.removeprefix("visual."): v for k, v in sd.items() if k.startswith("visual.")}
    width = sd["conv1.weight"].shape[0]
    patch = sd["conv1.weight"].shape[-1]
    depth = block_count(sd, "transformer.resblocks.", 2)
    grid = int(math.isqrt(sd["positional_embedding"].shape[0] - 1))
    config = CLIPVisionConfig(hidden_size=width,
                              intermediate_size=sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
                              projection_dim=sd["proj"].shape[1], num_hidden_layers=depth,
                              num_attention_heads=width // 64, image_size=grid * patch, patch_size=patch,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5)
    v = "vision_model."
    out = {v + "embeddings.class_embedding": sd["class_embedding"],
           v + "embeddings.position_embedding.weight": sd["positional_embedding"],
           v + "embeddings.patch_embedding.weight": sd["conv1.weight"],
           v + "pre_layrnorm.weight": sd["ln_pre.weight"], v + "pre_layrnorm.bias": sd["ln_pre.bias"],
           v + "post_layernorm.weight": sd["ln_post.weight"], v + "post_layernorm.bias": sd["ln_post.bias"],
           "visual_projection.weight": sd["proj"].t().contiguous()}
    for i in range(depth):
        b, o = f"transformer.resblocks.{i}.", f"{v}encoder.layers.{i}."
        q, k, vv = sd[b + "attn.in_proj_weight"].chunk(3)
        qb, kb, vb = sd[b + "attn.in_proj_bias"].chunk(3)
        out |= {o + "self_attn.q_proj.weight": q, o + "self_attn.k_proj.weight": k, o + "self_attn.v_proj.weight": vv,
                o + "self_attn.q_proj.bias": qb, o + "self_attn.k_proj.bias": kb, o + "self_attn.v_proj.bias": vb}
        for part in ("weight", "bias"):
            out |= {o + f"self_attn.out_proj.{part}": sd[b + f"attn.out_proj.{part}"],
                    o + f"layer_norm1.{part}": sd[b + f"ln_1.{part}"],
                    o + f"layer_norm2.{part}": sd[b + f"ln_2.{part}"],
                    o + f"mlp.fc1.{part}": sd[b + f"mlp.c_fc.{part}"],
                    o + f"mlp.fc2.{part}": sd[b + f"mlp.c_proj.{part}"]}
    model = CLIPVisionModelWithProjection(config)
    model.load_state_dict(out, strict=False)  # position_ids: a buffer the checkpoint does not carry
    missing = [k for k in model.state_dict() if k not in out and not k.endswith("position_ids")]
    if missing:
        raise ValueError(f"The CLIP checkpoint lacks {missing[0]}.")
    return model.eval()


def raft_from_state_dict(sd: dict):
    """torchvision's `raft_large` with RAFT's own weights (princeton-vl/RAFT, as in VBench) renamed to its
    module names, or with torchvision's own file as it is."""
    raft_large = torchvision("RAFT (dynamic_degree)").models.optical_flow.raft_large
    if any(k.startswith("fnet.") for k in sd):
        renamed = {}
        for k, v in sd.items():
            if re.search(r"layer\d\.\d\.norm3\.", k):
                continue  # the same tensors as downsample.1
            k = re.sub(r"^fnet\.", "feature_encoder.", k)
            k = re.sub(r"^cnet\.", "context_encoder.", k)
            k = re.sub(r"_encoder\.conv1\.", "_encoder.convnormrelu.0.", k)
            k = re.sub(r"_encoder\.norm1\.", "_encoder.convnormrelu.1.", k)
            k = re.sub(r"_encoder\.conv2\.", "_encoder.conv.", k)
            k = re.sub(r"(layer\d\.\d)\.conv(\d)\.", r"\1.convnormrelu\2.0.", k)
            k = re.sub(r"(layer\d\.\d)\.norm(\d)\.", r"\1.convnormrelu\2.1.", k)
            for a, b in (("convc1", "convcorr1.0"), ("convc2", "convcorr2.0"), ("convf1", "convflow1.0"),
                         ("convf2", "convflow2.0"), ("conv", "conv.0")):
                k = k.replace(f"update_block.encoder.{a}.", f"update_block.motion_encoder.{b}.")
            k = re.sub(r"update_block\.gru\.conv([zrq])([12])\.", r"update_block.recurrent_block.convgru\2.conv\1.", k)
            k = k.replace("update_block.mask.0.", "mask_predictor.convrelu.0.")
            renamed[k.replace("update_block.mask.2.", "mask_predictor.conv.")] = v
        sd = renamed
    model = raft_large(weights=None, progress=False)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def load_dino(path: str | Path, device: str = "cpu"):
    """DINO ViT from a dino checkpoint file or a transformers folder."""
    path = Path(path)
    if path.is_dir():
        from transformers import ViTModel

        read_config(path / "config.json")  # its sizes checked before anything is allocated

        return ViTModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False).eval().to(device)
    return built(dino_from_state_dict, path, "DINO ViT").to(device)


def load_clip_vision(path: str | Path, device: str = "cpu"):
    """CLIP's image tower from OpenAI's checkpoint or a transformers CLIP folder."""
    path = Path(path)
    if path.is_dir():
        from transformers import CLIPVisionModelWithProjection

        read_config(path / "config.json")  # its sizes checked before anything is allocated

        return CLIPVisionModelWithProjection.from_pretrained(path, local_files_only=True).eval().to(device)
    return built(clip_vision_from_state_dict, path, "CLIP ViT").to(device)


def load_raft(path: str | Path, device: str = "cpu"):
    return built(raft_from_state_dict, Path(path), "RAFT").to(device)


# ---------------------------------------------------------------- features

def dino_position_embedding(pos_embed: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """DINO's `interpolate_pos_encoding` (vision_transformer.py): the (1, 1 + N, D) table resized to a
    rows x cols grid by bicubic interpolation with scale factors ((rows + 0.1) / sqrt N, (cols + 0.1) / sqrt N);
    unchanged for the table's own square grid."""
    n = pos_embed.shape[1] - 1
    side = math.sqrt(n)
    if rows * cols == n and rows == cols:
        return pos_embed
    patch = pos_embed[:, 1:].reshape(1, int(side), int(side), -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch, scale_factor=((rows + 0.1) / side, (cols + 0.1) / side), mode="bicubic")
    return torch.cat((pos_embed[:, :1], patch.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)), dim=1)


def dino_features(vit, pixels: torch.Tensor) -> torch.Tensor:
    """CLS features (n, D) of a transformers ViTModel on normalised pixels (n, 3, H, W), computed as
    DINO's `VisionTransformer.forward`: patch embedding, CLS token, interpolated position table, blocks,
    final norm, token 0."""
    emb = vit.embeddings
    x = emb.patch_embeddings.projection(pixels)
    rows, cols = x.shape[-2:]
    x = torch.cat((emb.cls_token.expand(x.shape[0], -1, -1), x.flatten(2).transpose(1, 2)), dim=1)
    x = x + dino_position_embedding(emb.position_embeddings, rows, cols)
    for layer in vit.layers if hasattr(vit, "layers") else vit.encoder.layer:  # transformers 5 / 4.x
        x = layer(x)
        x = x[0] if isinstance(x, tuple) else x
    return vit.layernorm(x)[:, 0]


def dino_pixels(frames: np.ndarray) -> torch.Tensor:
    """VBench's `dino_transform(224)` on frames (n, H, W, 3) uint8 -> (n, 3, h, w) float32."""
    T = torchvision("subject_consistency").transforms

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = T.Resize(size=224, antialias=False)(x)
    return T.Normalize(DINO_MEAN, DINO_STD)(x.float().div(255.0))


def clip_pixels(frames: np.ndarray) -> torch.Tensor:
    """VBench's `clip_transform(224)` on frames (n, H, W, 3) uint8 -> (n, 3, 224, 224) float32."""
    T = torchvision("background_consistency").transforms

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = T.CenterCrop(224)(T.Resize(224, interpolation=T.InterpolationMode.BICUBIC, antialias=False)(x))
    return T.Normalize(CLIP_MEAN, CLIP_STD)(x.float().div(255.0))


def clip_features(model, pixels: torch.Tensor) -> torch.Tensor:
    """Projected image embeddings (n, E), OpenAI CLIP's `encode_image`."""
    return model(pixel_values=pixels).image_embeds


# ---------------------------------------------------------------- streaming dimensions

class Consistency(Metric):
    """Mean over frames t >= 1 of (max(0, cos(f_t, f_{t-1})) + max(0, cos(f_t, f_0))) / 2 of L2-normalised
    per-frame features, batched FRAMES_PER_BATCH frames at a time; VBench's per-video value. Its `video_sim`
    (the sum) and `pairs` (T - 1) go into the result too, for VBench's frame-weighted aggregate."""

    def __init__(self, name: str, model, pixels, features, device: str = "cpu"):
        self.name, self.model, self.pixels, self.features, self.device = name, model, pixels, features, device
        self.pending: list[np.ndarray] = []
        self.first = self.previous = None
        self.total, self.pairs = 0.0, 0

    def frame(self, frame: np.ndarray) -> None:
        self.pending.append(frame)
        if len(self.pending) == FRAMES_PER_BATCH:
            self._flush()

    @torch.no_grad()
    def _flush(self) -> None:
        if not self.pending:
            return
        feats = F.normalize(self.features(self.model, self.pixels(np.stack(self.pending)).to(self.device)), dim=-1, p=2)
        self.pending = []
        for f in feats:
            f = f.unsqueeze(0)
            if self.first is None:
                self.first = f
            else:
                sim_pre = max(0.0, F.cosine_similarity(self.previous, f).item())
                sim_fir = max(0.0, F.cosine_similarity(self.first, f).item())
                self.total += (sim_pre + sim_fir) / 2
                self.pairs += 1
            self.previous = f

    def result(self) -> dict:
        self._flush()
        value = self.total / self.pairs if self.pairs else None
        return {self.name: value, f"{self.name}_sum": self.total, f"{self.name}_pairs": self.pairs}


@torch.no_grad()
def padded_flow(raft, a: torch.Tensor, b: torch.Tensor, iters: int = 20) -> tuple[torch.Tensor, list[int]]:
    """(RAFT's final flow a -> b (1, 2, H', W'), the padding [left, right, top, bottom]) for frames
    (1, 3, H, W) float 0..255: replicate-padded to multiples of 8 as RAFT's InputPadder ('sintel' mode:
    split evenly, the odd pixel after), scaled to [-1, 1] as RAFT's own forward does."""
    h, w = a.shape[-2:]
    pad_h, pad_w = (-h) % 8, (-w) % 8
    pad = [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2]
    a, b = (F.pad(x, pad, mode="replicate") for x in (a, b))
    return raft(2 * (a / 255.0) - 1, 2 * (b / 255.0) - 1, num_flow_updates=iters)[-1], pad


def padded_side(side: int) -> int:
    """A frame side after RAFT's InputPadder (the next multiple of 8), which VBench measures."""
    return side + (-side) % 8


class DynamicDegree(Metric):
    """VBench's dynamic degree (module docstring): RAFT on every `interval`-th frame."""

    name = "dynamic_degree"

    def __init__(self, raft, fps: float | None = None, device: str = "cpu", iters: int = 20):
        self.raft, self.device, self.iters = raft, device, iters
        self.interval = max(1, round(fps / 8)) if fps else 1
        self.index, self.sampled, self.previous = 0, 0, None
        self.scores: list[float] = []
        self.short_side, self.too_small = None, None

    def frame(self, frame: np.ndarray) -> None:
        take = self.index % self.interval == 0
        self.index += 1
        if not take:
            return
        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float()[None].to(self.device)
        self.short_side = min(image.shape[-2:])
        self.sampled += 1
        if padded_side(self.short_side) < 128:  # RAFT's pyramid needs 16 px feature maps of the padded frame
            self.too_small = f"{frame.shape[1]}x{frame.shape[0]}"
            return
        if self.previous is not None:
            self.scores.append(self.pair_score(self.previous, image))
        self.previous = image

    @torch.no_grad()
    def pair_score(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Mean of the top 5 % flow magnitudes over the padded frame (VBench's `get_score`)."""
        flow, _ = padded_flow(self.raft, a, b, self.iters)
        flo = flow[0].permute(1, 2, 0).cpu().numpy()
        rad = np.sqrt(np.square(flo[:, :, 0]) + np.square(flo[:, :, 1])).flatten()
        return float(np.mean(np.abs(np.sort(-rad))[:int(rad.size * 0.05)]))

    def result(self) -> dict:
        if self.too_small:
            return {self.name: None, "dynamic_degree_note": f"RAFT needs frames of at least 121 px a side (128 px "
                                                            f"once padded to a multiple of 8); these "
                                                            f"are {self.too_small} (measure them at a larger --size)"}
        if self.sampled < 2:
            return {self.name: None}
        threshold, needed = 6.0 * (self.short_side / 256.0), round(4 * (self.sampled / 16.0))
        dynamic = sum(s > threshold for s in self.scores) >= needed
        return {self.name: bool(dynamic), "dynamic_pairs_above": int(sum(s > threshold for s in self.scores)),
                "dynamic_pairs_needed": needed}


class InterpolationSmoothness(Metric):
    """VBench's motion-smoothness protocol with RAFT flow interpolation in place of its AMT-S network;
    NOT VBench's `motion_smoothness` number (module docstring of docs/metrics.md says why).

    Every odd frame t is interpolated from frames t - 1 and t + 1 (VBench's even-frame inputs): with
    RAFT's flows F = flow(I_{t-1} -> I_{t+1}) and B = flow(I_{t+1} -> I_{t-1}), the midpoint flows of
    Jiang et al.'s Super SloMo, F_{t->t-1} = (B - F) / 4 and F_{t->t+1} = (F - B) / 4, warp both
    neighbours backwards, and the estimate is their average (exact for a constant-velocity
    translation away from the borders). The estimate is rounded to uint8 (VBench truncates AMT's
    output; a warp's sampling error of 1e-6 would turn 95 into 94 there); then, as VBench, its mean
    absolute difference to the real frame, averaged over the odd frames, mapped to (255 - mean) / 255.
    """

    name = "interpolation_smoothness"

    def __init__(self, raft, device: str = "cpu", iters: int = 20):
        self.raft, self.device, self.iters = raft, device, iters
        self.index, self.before, self.middle = 0, None, None
        self.diffs: list[float] = []
        self.too_small = None

    def frame(self, frame: np.ndarray) -> None:
        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float()[None].to(self.device)
        if padded_side(min(image.shape[-2:])) < 128:
            self.too_small = f"{frame.shape[1]}x{frame.shape[0]}"
        elif self.index % 2 == 1:
            self.middle = frame
        elif self.before is not None:
            estimate = self.interpolate(self.before, image)
            self.diffs.append(float(np.mean(np.abs(estimate.astype(np.int16) - self.middle.astype(np.int16)))))
        if self.index % 2 == 0:
            self.before = image
        self.index += 1

    def flow(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """RAFT's flow a -> b at the frames' own size (padding cropped off)."""
        (h, w), (flow, pad) = a.shape[-2:], padded_flow(self.raft, a, b, self.iters)
        return flow[..., pad[2]:pad[2] + h, pad[0]:pad[0] + w]

    def interpolate(self, before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
        """The midpoint frame (H, W, 3) uint8 of two frames (1, 3, H, W) float 0..255."""
        from ..flow import warp_torch

        fwd, bwd = self.flow(before, after), self.flow(after, before)
        mid = 0.5 * warp_torch(before, (bwd - fwd) / 4) + 0.5 * warp_torch(after, (fwd - bwd) / 4)
        return np.rint(mid[0].permute(1, 2, 0).cpu().numpy()).clip(0, 255).astype(np.uint8)

    def result(self) -> dict:
        if self.too_small:
            return {self.name: None, f"{self.name}_note": f"RAFT needs frames of at least 121 px a side (128 px "
                                                          f"once padded to a multiple of 8); these "
                                                          f"are {self.too_small}"}
        if not self.diffs:
            return {self.name: None}
        return {self.name: (255.0 - float(np.mean(self.diffs))) / 255.0}


def make(dimensions, models: dict, device: str = "cpu", fps: float | None = None) -> list[Metric]:
    """Accumulators for `dimensions`, given loaded models {"dino" | "clip" | "raft": model}."""
    out = []
    for dim in dimensions:
        if dim == "subject_consistency":
            out.append(Consistency(dim, models["dino"], dino_pixels, dino_features, device))
        elif dim == "background_consistency":
            out.append(Consistency(dim, models["clip"], clip_pixels, clip_features, device))
        elif dim == "dynamic_degree":
            out.append(DynamicDegree(models["raft"], fps, device))
        elif dim == "interpolation_smoothness":
            out.append(InterpolationSmoothness(models["raft"], device))
        else:
            raise ValueError(f"Unknown VBench dimension {dim!r}; available: {', '.join(DIMENSIONS)}.")
    return out


def load_models(paths: dict[str, Path], device: str = "cpu") -> dict:
    torchvision("VBench's dimensions")  # before any weights load
    loaders = {"dino": load_dino, "clip": load_clip_vision, "raft": load_raft}
    return {kind: loaders[kind](path, device) for kind, path in paths.items()}


def vbench_results(rows: list[dict], dimensions) -> dict:
    """VBench's result layout, {dimension: [aggregate, [{"video_path", "video_results"}, ...]]}, over the
    rows that have the dimension: consistency frame-weighted (sum of sums / sum of pairs), as VBench's
    `sim / cnt`; dynamic_degree the mean of the per-video booleans."""
    out = {}
    for dim in dimensions:
        done = [r for r in rows if r.get(dim) is not None]
        per_video = [{"video_path": r["path"], "video_results": r[dim]} for r in done]
        if dim == "dynamic_degree":
            agg = float(np.mean([r[dim] for r in done])) if done else None
        else:
            pairs = sum(r[f"{dim}_pairs"] for r in done)
            agg = sum(r[f"{dim}_sum"] for r in done) / pairs if pairs else None
        out[dim] = [agg, per_video]
    return out
