"""Atomic structures and the geometry shared by scattering, energy and restraints."""

from scatterfit.structure.structure import Structure, UISO_DEFAULT

__all__ = ["Structure", "UISO_DEFAULT"]
