"""Locate example data shipped inside registry packages (never committed to this repository)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from scatterfit.errors import ScatterfitError


def cmi_example(relative: str) -> Path:
    """Path of a file under diffpy/cmi/docs/examples/ in the diffpy.cmi wheel (pip install diffpy.cmi --no-deps)."""
    spec = importlib.util.find_spec("diffpy.cmi")
    if spec is None or not spec.submodule_search_locations:
        raise ScatterfitError("example data need the diffpy.cmi wheel: pip install --no-deps diffpy.cmi==3.2.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "docs" / "examples" / relative
    if not path.is_file():
        raise ScatterfitError(f"{relative} is not in the installed diffpy.cmi")
    return path
