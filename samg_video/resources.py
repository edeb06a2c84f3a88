"""Files shipped inside the package: model cards, the bundled model's weights, prompt suites.

Found with `importlib.resources`, so they are there for an editable checkout and for an
installed wheel alike.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(*parts: str) -> Path:
    """The path of a shipped file or folder, e.g. package_path("models", "registry")."""
    return Path(str(files("samg_video").joinpath(*parts)))
