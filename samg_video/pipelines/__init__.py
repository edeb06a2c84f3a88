"""Integration with diffusers pipelines: `apply(pipe, method)` wraps the denoiser."""

from __future__ import annotations

from typing import Callable

from ..guidance import Guidance, create, from_dict
from ..guidance.skip import parse_policy
from .hook import Adapter, GuiderHandle, GuidanceHandle, StepInfo

__all__ = ["apply", "adapter_for", "Adapter", "GuidanceHandle", "GuiderHandle", "StepInfo", "SAMGGuider",
           "GuidanceGuider"]


def __getattr__(name):
    if name in ("SAMGGuider", "GuidanceGuider"):  # imported lazily: diffusers' guiders log a warning on construction
        from . import guider

        return getattr(guider, name)
    raise AttributeError(name)

def adapter_for(pipe) -> Adapter:
    """How `pipe` runs CFG, derived from the pipeline itself (`derive.derive_adapter`)."""
    from .derive import derive_adapter

    return derive_adapter(pipe)


def as_method(method, params: dict, what: str) -> Guidance:
    """A method object from what `apply` accepts (an object, a registered name with `params`, a
    config dict); anything else is one sentence, before the pipeline is touched."""
    if isinstance(method, Guidance):
        if params:
            raise ValueError(f"Parameters {sorted(params)} go with a method name; {what} is already a method object.")
        return method
    if isinstance(method, str):
        return create(method, **params)
    if isinstance(method, dict):
        return from_dict(method)
    raise ValueError(f"{what} must be a samg_video method object, a method name (e.g. 'samg') or a config dict; "
                     f"got {method!r} ({type(method).__name__}).")


def check_no_cache(pipe, names: tuple[str, ...], policy) -> None:
    """Refuse a skip policy on a denoiser with one of diffusers' caches enabled (`enable_cache`):
    FasterCache's CFG cache already approximates the unconditional branch, and the block caches
    (FirstBlockCache, PyramidAttentionBroadcast, ...) compare a call with the one before it, which a
    policy's conditional-only calls change; one of the two must go."""
    for name in names:
        module = getattr(pipe, name, None)
        config = getattr(module, "_cache_config", None)
        if module is not None and getattr(module, "is_cache_enabled", False) and config is not None:
            raise ValueError(f"{type(pipe).__name__}.{name} has diffusers' {type(config).__name__} enabled, which "
                             f"reuses its own earlier calls; the skip policy {policy.label()!r} changes which calls "
                             f"are made, so use one of the two: call {name}.disable_cache() or pass skip=None.")


def apply(pipe, method: Guidance | str | dict, *, callback: Callable[[StepInfo], None] | None = None,
          experts: dict[str, Guidance | str | dict] | None = None, skip=None,
          **params) -> GuidanceHandle | GuiderHandle:
    """Make `pipe` guide with `method` until the returned handle is removed.

    A pipeline that combines its predictions in a `guider` component (HunyuanVideo 1.5) gets
    the method in that slot (`GuiderHandle`); every other pipeline gets its denoiser wrapped
    (`GuidanceHandle`, how: `adapter_for`).

    `method` is a method object, a registered name (with `**params`) or a config dict.
    `callback(StepInfo)` runs after every guided denoiser call. `experts` gives a denoiser of
    its own method, e.g. Wan 2.2 A14B's low-noise expert, which the pipeline guides at
    `guidance_scale_2`: `experts={"transformer_2": samg_video.guidance.create("samg", w_min=2, w_max=4)}`
    (by default every expert uses `method`).

    `skip` makes steps without the unconditional pass (`samg_video.guidance.skip`): a policy
    object, 'every:3', 'adaptive:0.05', 'interval:0.2-0.8', a dict, or None / 'off' (every
    step computes it). On a skipped step a batched pipeline's denoiser runs on the conditional
    half only and a two-call pipeline's unconditional call is not made; the handle counts
    `calls` and `rows` (batch rows computed) and each StepInfo says how its step got the
    unconditional prediction (`uncond`).

        with apply(pipe, "samg", w_min=3, w_max=9):
            video = pipe("a red circle moving left").frames[0]
    """
    method = as_method(method, params, "method")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be a function of one StepInfo, got {callback!r} ({type(callback).__name__}).")
    if experts is not None and not isinstance(experts, dict):
        raise ValueError(f"experts must map denoiser names to methods, got {type(experts).__name__}.")
    experts = {name: as_method(m, {}, f"experts[{name!r}]") for name, m in (experts or {}).items()}
    policy = parse_policy(skip)
    if (getattr(pipe, "components", None) or {}).get("guider") is not None:
        from .derive import layout_of

        if experts:
            raise ValueError(f"{type(pipe).__name__} has one denoiser; `experts` is for pipelines with two.")
        if policy is not None:
            check_no_cache(pipe, ("transformer",), policy)
        return GuiderHandle(pipe, method, layout_of(pipe, pipe.transformer), callback, policy)
    adapter = adapter_for(pipe)
    if policy is not None:
        check_no_cache(pipe, adapter.denoisers, policy)
    return GuidanceHandle(pipe, method, adapter, callback, experts, policy)
