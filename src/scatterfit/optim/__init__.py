"""Optimisers: stages (one type per optimiser), the runner that steps them, the swarm and the memetic search."""

from scatterfit.optim.runner import Result, refine
from scatterfit.optim.stages import LBFGS, STAGES, Adam, Anneal, Basin, LevenbergMarquardt, Stage, pdf_range_ramp

__all__ = ["Stage", "LBFGS", "Adam", "LevenbergMarquardt", "Basin", "Anneal", "STAGES", "refine", "Result",
           "pdf_range_ramp"]
