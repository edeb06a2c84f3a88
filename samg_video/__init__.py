"""samg-video: spatio-temporal Spatial Adaptive Multi Guidance for text-to-video diffusion.

    from samg_video import apply, SAMGGuider, GuidanceGuider, guidance

`apply(pipe, method, ...)` guides a diffusers pipeline (samg_video.pipelines.apply); `SAMGGuider`
and `GuidanceGuider` are diffusers guiders; `guidance` holds the methods as tensor functions.
They load on first use, so `import samg_video` stays light (the command line starts fast).
"""
__version__ = "0.1.0"
__all__ = ["apply", "SAMGGuider", "GuidanceGuider", "guidance"]


def __getattr__(name):
    if name in ("apply", "SAMGGuider", "GuidanceGuider"):
        from . import pipelines

        return getattr(pipelines, name)
    if name == "guidance":
        import importlib

        return importlib.import_module(".guidance", __name__)
    raise AttributeError(f"module 'samg_video' has no attribute {name!r}")
