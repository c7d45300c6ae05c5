"""Atomic structures and the geometry shared by scattering, energy and restraints."""

from scatterfit.structure.files import read_structure
from scatterfit.structure.structure import UISO_DEFAULT, Structure

__all__ = ["Structure", "UISO_DEFAULT", "read_structure"]
