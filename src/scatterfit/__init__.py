"""scatterfit: atomic structures from scattering data by differentiable refinement.

``Structure`` is imported on first use (PEP 562), so that the command line's parser and ``--help`` start without
torch."""

from scatterfit.errors import ScatterfitError

__version__ = "0.1.0"
__all__ = ["Structure", "ScatterfitError", "__version__"]


def __getattr__(name: str):
    if name == "Structure":
        from scatterfit.structure import Structure

        return Structure
    raise AttributeError(f"module 'scatterfit' has no attribute '{name}'")
