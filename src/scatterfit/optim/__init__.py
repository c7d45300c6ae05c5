"""Optimisers: gradient refinement with stages, checkpoints and observers."""

from scatterfit.optim.refine import Result, Stage, pdf_range_ramp, refine

__all__ = ["Stage", "refine", "Result", "pdf_range_ramp"]
