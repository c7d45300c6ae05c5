"""The stage contract: settings every stage has (with their help and ranges, which the config file's documentation
and validation read) and ``start`` returning the run that the runner steps (``step()``, ``theta``,
``state_dict()``). Each optimiser's stage type lives beside its run (local.py, basin.py, anneal.py)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

from scatterfit.errors import ScatterfitError

SATURATED = 12.0  # |θ| of a logit-mapped parameter on its bound (σ'(θ) < 7e-6)
RELEASED = 6.0  # where a released parameter restarts (2.5e-3 of its range inside the bound)


def setting(default, help: str, low: float | None = None, open_low: bool = False):
    """A stage setting with its help text and allowed range (dataclass field metadata)."""
    kwargs = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata={"help": help, "low": low, "open_low": open_low}, **kwargs)


@dataclass
class StageBase:
    """Settings every stage has.

    Attributes:
        free: parameter groups refined in this stage (None: every free group of the parametrisation).
        steps: maximum steps (optimiser steps, hops or MD steps).
        xmax: fit only data points with x ≤ xmax (an r-range ramp: short range first, where a wrong lattice still
            overlaps the peaks).
        weights: {term name: weight} overriding the terms' weights in this stage (0 switches a term off).
        target: stop the stage when the loss is ≤ target.
        release: before the stage, a parameter an earlier stage pressed onto its bound (θ of the logit map
            beyond ±SATURATED: within 6e-6 of its range from the bound, where the map passes no usable gradient)
            starts at ±RELEASED instead (2.5e-3 of its range inside) and can leave (an ADP that the short-range
            stage drove to its upper bound stays there otherwise: the measured BaZn2As2's Ba, Rw 0.163 against
            0.117).
    """

    optimizer: ClassVar[str] = ""
    stops_on_stall: ClassVar[bool] = False

    free: list | None = setting(None, "groups refined in this stage (default: all free groups)")
    steps: int = setting(100, "maximum steps (hops for basin, MD steps for anneal)", low=1)
    xmax: float | None = setting(None, "fit only x ≤ xmax in this stage (r-range ramp)", low=0.0, open_low=True)
    weights: dict | None = setting(None, "{term name = weight} for this stage (0 switches a term off)")
    target: float | None = setting(None, "stop the stage when the loss is ≤ target")
    release: bool = setting(False, "before the stage, move the parameters an earlier stage pressed onto a bound "
                                   "back inside it, where they are free to move again")

    def __post_init__(self):
        for f in fields(self):
            low = f.metadata.get("low")
            value = getattr(self, f.name)
            if low is None or value is None:
                continue
            if value < low or (f.metadata.get("open_low") and value == low):
                relation = ">" if f.metadata["open_low"] else "≥"
                raise ScatterfitError(f"{self.optimizer} stage: {f.name} must be {relation} {low:g}, got {value}")

    def groups(self, parametrisation) -> list:
        """The groups this stage frees, checked against the parametrisation."""
        groups = parametrisation.free if self.free is None else list(self.free)
        expand = getattr(parametrisation, "expand", None)  # several phases: "lattice" is every phase's lattice
        if expand is not None:
            groups = [g for g in expand(groups) if g in parametrisation.free or "." not in g or g in self.free]
        missing = [g for g in groups if g not in parametrisation.free]
        if missing:
            raise ScatterfitError(f"the {self.optimizer} stage frees {missing}, which the parametrisation does not "
                                  f"have free (free: {parametrisation.free})")
        return groups

    def released(self, problem, theta):
        """θ with the entries of this stage's groups (but "scale", whose values span decades) that sit on a bound
        (|θ| > SATURATED) moved to ±RELEASED (see ``release``)."""
        import torch

        groups = [g for g in self.groups(problem.parametrisation) if g.rsplit(".", 1)[-1] != "scale"]
        mask = problem.mask(theta, groups).bool() & (theta.abs() > SATURATED)
        return torch.where(mask, theta.sign() * RELEASED, theta)

    def start(self, problem, theta, resumed, rng):
        """The run of this stage from θ (``resumed``: its saved state_dict, or None)."""
        raise NotImplementedError
