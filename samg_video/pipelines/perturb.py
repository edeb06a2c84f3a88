"""The perturbed denoiser call of perturbation guidance (STG, SLG, PAG), through diffusers' hooks.

`perturbed(denoiser, perturbation)` is a context in which the chosen blocks are weakened:

- transformers (CogVideoX, Wan, LTX-Video, HunyuanVideo, SD3): diffusers' own layer skip,
  `apply_layer_skip(denoiser, LayerSkipConfig(...))` on the block stack (`fqn`, found by
  name when "auto"); mode "block" skips whole blocks (attention and feed-forward),
  mode "attention" makes their self-attention return its values (identity attention map),
  where diffusers supports the model's attention processor;
- a denoiser that names its own residual blocks in `skippable_blocks` (the bundled U-Net):
  the same two behaviours as diffusers `ModelHook`s on those modules (identity attention
  on their nn.MultiheadAttention layers: out_proj(v_proj(value)); diffusers' score-skipping
  function mode does not reach inside nn.MultiheadAttention).

Hooks are removed on leaving the context, so the next ordinary call runs the model unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..guidance.base import Perturbation

HOOK_NAME = "samg_video_perturbation"
STACK_NAMES = ("transformer_blocks", "blocks", "layers", "single_transformer_blocks")


def block_stack(denoiser: torch.nn.Module, fqn: str) -> tuple[str, list[torch.nn.Module]]:
    """(name, blocks) of the stack a perturbation indexes: the denoiser's `skippable_blocks`
    (names of its modules), else the ModuleList at `fqn` ("auto": the first of STACK_NAMES)."""
    own = getattr(denoiser, "skippable_blocks", None)
    if own is not None:
        return "skippable_blocks", [denoiser.get_submodule(name) for name in own]
    names = STACK_NAMES if fqn == "auto" else (fqn,)
    for name in names:
        try:
            stack = denoiser.get_submodule(name)
        except AttributeError:
            continue
        if isinstance(stack, torch.nn.ModuleList):
            return name, list(stack)
    raise ValueError(f"{type(denoiser).__name__} has no stack of blocks named {' / '.join(names)}; "
                     "set fqn to the name of its ModuleList of transformer blocks.")


def resolve_layers(perturbation: Perturbation, count: int) -> list[int]:
    """The block indices to perturb: the given ones (checked against `count`), or the middle block."""
    layers = list(perturbation.layers) if perturbation.layers is not None else [count // 2]
    bad = [i for i in layers if i >= count]
    if bad:
        raise ValueError(f"layers {bad} are out of range: the denoiser has {count} blocks (0..{count - 1}).")
    return layers


def value_path(attn: torch.nn.MultiheadAttention, value: torch.Tensor) -> torch.Tensor:
    """An nn.MultiheadAttention's output with the identity attention map: out_proj(v_proj(value))."""
    d = attn.embed_dim
    bias = None if attn.in_proj_bias is None else attn.in_proj_bias[2 * d:]
    weight = attn.in_proj_weight[2 * d:] if attn.in_proj_weight is not None else attn.v_proj_weight
    return F.linear(F.linear(value, weight, bias), attn.out_proj.weight, attn.out_proj.bias)


def _hook_classes():
    from diffusers.hooks import ModelHook

    class SkipBlock(ModelHook):
        """The block returns its input: a residual block left out."""

        def new_forward(self, module, *args, **kwargs):
            return args[0] if args else next(iter(kwargs.values()))

    class IdentityAttention(ModelHook):
        """An nn.MultiheadAttention whose attention map is the identity: every token keeps its value."""

        def new_forward(self, module, query, key, value, *args, **kwargs):
            return value_path(module, value), None

    return SkipBlock, IdentityAttention


@contextmanager
def perturbed(denoiser: torch.nn.Module, perturbation: Perturbation):
    """Within the block, `denoiser` runs with `perturbation` applied (module docstring)."""
    from diffusers.hooks import HookRegistry

    name, blocks = block_stack(denoiser, perturbation.fqn)
    layers = resolve_layers(perturbation, len(blocks))
    try:
        if name == "skippable_blocks":
            skip, attention = _hook_classes()
            for i in layers:
                targets = [(blocks[i], skip)] if perturbation.mode == "block" else [
                    (m, attention) for m in blocks[i].modules() if isinstance(m, torch.nn.MultiheadAttention)]
                for module, hook in targets:
                    HookRegistry.check_if_exists_or_initialize(module).register_hook(hook(), HOOK_NAME)
        else:
            from diffusers.hooks.layer_skip import LayerSkipConfig, _apply_layer_skip_hook

            block = perturbation.mode == "block"
            config = LayerSkipConfig(indices=layers, fqn=name, skip_attention=block, skip_ff=block,
                                     skip_attention_scores=not block)
            try:
                _apply_layer_skip_hook(denoiser, config, name=HOOK_NAME)
            except ValueError as err:
                raise ValueError(f"diffusers cannot perturb {type(denoiser).__name__} with mode="
                                 f"{perturbation.mode!r} ({str(err).splitlines()[0]}); try mode='block'.") from None
        yield layers
    finally:
        HookRegistry.check_if_exists_or_initialize(denoiser).remove_hook(HOOK_NAME, recurse=True)
