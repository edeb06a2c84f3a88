"""Modules imported on first use: `torch = lazy("torch")` binds a stand-in that imports torch the
first time one of its attributes is read, then holds each attribute it was asked for (later reads
are plain attribute reads). The guidance modules import torch so, and the command line checks what
was typed (a method's parameters, a skip policy) with their declarations before torch has loaded:
about 2 s on a laptop's CPU."""

from __future__ import annotations

import importlib
import types


class LazyModule(types.ModuleType):
    """The stand-in for module `name` until one of its attributes is read."""

    def __getattr__(self, attr: str):
        value = getattr(importlib.import_module(self.__name__), attr)
        setattr(self, attr, value)
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self.__name__!r}>"


def lazy(name: str) -> types.ModuleType:
    """Module `name` itself where it is already imported, else a `LazyModule` for it."""
    import sys

    return sys.modules.get(name) or LazyModule(name)
