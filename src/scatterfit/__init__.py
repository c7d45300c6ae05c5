"""scatterfit: atomic structures from scattering data by differentiable refinement."""

from scatterfit.errors import ScatterfitError
from scatterfit.structure import Structure

__version__ = "0.1.0"
__all__ = ["Structure", "ScatterfitError", "__version__"]
