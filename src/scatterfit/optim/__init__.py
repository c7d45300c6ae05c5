"""Optimisers: gradient refinement with stages, checkpoints and observers."""

from scatterfit.optim.refine import Result, Stage, refine

__all__ = ["Stage", "refine", "Result"]
