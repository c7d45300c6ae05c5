"""One exception type for every user-facing problem, so the CLI can print one clear line."""


class ScatterfitError(ValueError):
    """A problem with the user's input (file, structure, setting), described in one line."""


EXTRAS = {"chgnet": "ml", "tblite": "xtb", "dask": "cluster", "distributed": "cluster", "nevergrad": "bench",
          "ray": "ray"}
"""Optional packages and the extra of scatterfit that installs each (pip install 'scatterfit[extra]')."""


def require(module: str, purpose: str):
    """Import an optional package, or raise one line naming the extra that installs it.

    Args:
        module: the module to import (e.g. "chgnet.model").
        purpose: what needs it, for the message (e.g. "the chgnet potential").
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        extra = EXTRAS.get(top)
        hint = f"pip install 'scatterfit[{extra}]'" if extra else f"pip install {top}"
        raise ScatterfitError(f"{purpose} needs the optional package '{top}': {hint}") from None
