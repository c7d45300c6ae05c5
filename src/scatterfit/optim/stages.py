"""Stage types: one dataclass per optimiser, each with its own settings (and their help and ranges, which the
config file's documentation and validation read), and ``start`` returning the run that the runner steps.

A new optimiser is one new module with a Stage dataclass and its run (``step()``, ``theta``, ``state_dict()``),
and one line in STAGES.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import ClassVar

from scatterfit.errors import ScatterfitError


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
    """

    optimizer: ClassVar[str] = ""
    stops_on_stall: ClassVar[bool] = False

    free: list | None = setting(None, "groups refined in this stage (default: all free groups)")
    steps: int = setting(100, "maximum steps (hops for basin, MD steps for anneal)", low=1)
    xmax: float | None = setting(None, "fit only x ≤ xmax in this stage (r-range ramp)", low=0.0, open_low=True)
    weights: dict | None = setting(None, "{term name = weight} for this stage (0 switches a term off)")
    target: float | None = setting(None, "stop the stage when the loss is ≤ target")

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
        missing = [g for g in groups if g not in parametrisation.free]
        if missing:
            raise ScatterfitError(f"the {self.optimizer} stage frees {missing}, which the parametrisation does not "
                                  f"have free (free: {parametrisation.free})")
        return groups

    def start(self, problem, theta, resumed, rng):
        """The run of this stage from θ (``resumed``: its saved state_dict, or None)."""
        raise NotImplementedError


@dataclass
class LocalStage(StageBase):
    """Settings of the local (gradient) optimisers."""

    stops_on_stall: ClassVar[bool] = True

    lr: float = setting(1.0, "learning rate (adam) or initial step (lbfgs)", low=0.0, open_low=True)
    tol: float = setting(1e-9, "stop when the relative loss change stays below tol for patience steps", low=0.0)
    patience: int = setting(5, "see tol", low=1)

    def start(self, problem, theta, resumed, rng):
        from scatterfit.optim.local import LocalRun

        return LocalRun(problem, self, theta, resumed)


@dataclass
class LBFGS(LocalStage):
    """L-BFGS with a strong-Wolfe line search (one iteration per step)."""

    optimizer: ClassVar[str] = "lbfgs"


@dataclass
class Adam(LocalStage):
    """Adam (for noisy or very many-parameter problems)."""

    optimizer: ClassVar[str] = "adam"


@dataclass
class Basin(StageBase):
    """Basin hopping on the positions (or on the orbits of a symmetric structure when "orbits" is free; see
    optim/basin.py): ``steps`` hops, each a random move relaxed by ``local_steps`` L-BFGS steps and accepted by the
    Metropolis rule at the relative ``temperature``; the stage ends on the best structure met."""

    optimizer: ClassVar[str] = "basin"

    local_steps: int = setting(40, "L-BFGS steps relaxing each hop", low=1)
    step_size: float = setting(0.3, "jitter of a hop, Å", low=0.0, open_low=True)
    temperature: float = setting(0.02, "Metropolis temperature relative to the loss", low=0.0)

    def start(self, problem, theta, resumed, rng):
        from scatterfit.optim.basin import BasinRun

        return BasinRun(problem, self, theta, resumed, rng)


@dataclass
class Anneal(StageBase):
    """A melt-and-quench of the positions by Langevin molecular dynamics on the loss (optim/anneal.py):
    ``steps`` MD steps of ``timestep`` fs with the temperature falling linearly from t_start to t_end K; it
    first relaxes the start by ``local_steps`` L-BFGS steps; the stage ends on the quenched structure."""

    optimizer: ClassVar[str] = "anneal"

    t_start: float = setting(3000.0, "start temperature, K", low=0.0)
    t_end: float = setting(300.0, "end temperature, K", low=0.0)
    timestep: float = setting(1.0, "MD time step, fs", low=0.0, open_low=True)
    friction: float = setting(10.0, "Langevin friction, 1/ps", low=0.0)
    energy_scale: float | None = setting(None, "eV per unit of loss (default: atoms / energy weight)", low=0.0,
                                         open_low=True)
    local_steps: int = setting(40, "L-BFGS steps relaxing the start before the melt (0: none)", low=0)
    max_move: float = setting(0.2, "largest move of an atom in one step, Å", low=0.0, open_low=True)

    def start(self, problem, theta, resumed, rng):
        from scatterfit.optim.anneal import AnnealRun

        return AnnealRun(problem, self, theta, resumed, rng)


STAGES: dict[str, type[StageBase]] = {"lbfgs": LBFGS, "adam": Adam, "basin": Basin, "anneal": Anneal}
"""Stage types by optimiser name (the config's [[strategy]].optimizer)."""


def register_stage(cls: type[StageBase]) -> type[StageBase]:
    """Make a stage type available by its ``optimizer`` name (in ``Stage(...)`` and config files); usable as a
    class decorator."""
    if not cls.optimizer:
        raise ScatterfitError(f"{cls.__name__} needs an optimizer name (class attribute 'optimizer')")
    STAGES[cls.optimizer] = cls
    return cls


def stage_settings(cls: type[StageBase]) -> dict:
    """{name: dataclass field} of a stage type's settings."""
    return {f.name: f for f in fields(cls)}


def Stage(optimizer: str = "lbfgs", **settings) -> StageBase:
    """A stage by optimiser name, e.g. ``Stage("lbfgs", steps=60, xmax=5.0)`` or ``Stage("basin", steps=10)``.

    Raises:
        ScatterfitError: for an unknown optimiser or a setting that does not apply to it.
    """
    if optimizer not in STAGES:
        raise ScatterfitError(f"unknown optimizer '{optimizer}' (use {', '.join(STAGES)})")
    cls = STAGES[optimizer]
    known = stage_settings(cls)
    extra = sorted(set(settings) - set(known))
    if extra:
        raise ScatterfitError(f"setting(s) {extra} do not apply to a {optimizer} stage (its settings: "
                              f"{', '.join(known)})")
    return cls(**settings)


def default_of(f) -> object:
    """The default value of a stage setting (dataclass field)."""
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def pdf_range_ramp(free: list | None = None) -> list[StageBase]:
    """The default PDF strategy: an r-range ramp (5 Å → 12 Å → all), L-BFGS. A wrong lattice still overlaps the
    short-range peaks, so those are fitted first (the cell or expansion and the ADPs: those of them in ``free``,
    the parametrisation's free groups; all free groups when it has none of them), then everything on longer
    ranges."""
    first = ["lattice", "biso"] if free is None else [g for g in ("lattice", "cell", "expansion", "biso") if g in free]
    return [LBFGS(free=first or None, steps=60, xmax=5.0), LBFGS(steps=60, xmax=12.0), LBFGS(steps=200)]
