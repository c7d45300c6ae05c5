"""Stage types by optimiser name: the registry the config file and ``Stage("lbfgs", ...)`` read, and the default
PDF strategy. A new optimiser is one module (its stage dataclass and run) and one :func:`register_stage` line."""

from __future__ import annotations

from dataclasses import MISSING, fields

from scatterfit.errors import ScatterfitError
from scatterfit.optim.anneal import Anneal
from scatterfit.optim.basin import Basin
from scatterfit.optim.lm import LevenbergMarquardt
from scatterfit.optim.local import LBFGS, Adam
from scatterfit.optim.stage import StageBase

STAGES: dict[str, type[StageBase]] = {"lbfgs": LBFGS, "adam": Adam, "lm": LevenbergMarquardt, "basin": Basin,
                                      "anneal": Anneal}
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


LM_MAX_PARAMETERS = 60
"""The default strategy refines with Levenberg–Marquardt up to this many free parameters (its Jacobian costs one
forward evaluation per parameter), with L-BFGS beyond."""


def default_optimizer(loss, parametrisation) -> str:
    """"lm" for a least-squares refinement with few parameters (every term a data term, at most
    LM_MAX_PARAMETERS free entries), else "lbfgs"."""
    from scatterfit.loss import DataTerm

    n_free = parametrisation.initial_vector().numel()
    least_squares = all(isinstance(t, DataTerm) for t in loss.terms if t.weight != 0)
    return "lm" if least_squares and n_free <= LM_MAX_PARAMETERS else "lbfgs"


POWDER_FIRST = ("background", "lattice", "zero", "W", "fraction")
"""What a Bragg refinement frees first (the LBCO example's first stage): the peaks' positions and a common width
against a smooth background, before the intensities (ADPs, coordinates) and the angle dependence of the widths."""


def powder_ramp(free: list, steps: tuple = (40, 100)) -> list[StageBase]:
    """The default Bragg (Rietveld) strategy, Levenberg–Marquardt: the POWDER_FIRST groups of ``free`` (a phase's
    "Si.lattice" too), then every free group; ``steps``: the two stages' step limits."""
    first = [g for g in free if g.rsplit(".", 1)[-1] in POWDER_FIRST]
    return [LevenbergMarquardt(free=first or None, steps=steps[0], tol=1e-6),
            LevenbergMarquardt(steps=steps[1], tol=1e-6)]


def pdf_range_ramp(free: list | None = None, optimizer: str = "lbfgs", steps: tuple | None = None
                   ) -> list[StageBase]:
    """The default PDF strategy: an r-range ramp (5 Å → 12 Å → all) with ``optimizer`` ("lbfgs" or "lm"; see
    :func:`default_optimizer`). A wrong lattice still overlaps the short-range peaks, so those are fitted first
    (the cell or expansion, the ADPs and the phase fractions, without which a phase's ADP grows to hide a wrong
    amount of it: those of them in ``free``, the parametrisation's free groups, also a phase's such as
    "Si.lattice"; all free groups when it has none of them), then everything on longer ranges, releasing first
    what the short range pressed onto a bound (StageBase.release: an ADP the first peaks drove to its limit, where
    the bounded map passes no gradient). ``steps``: the three stages' step limits (default (30, 30, 100) for lm,
    (60, 60, 200) for lbfgs)."""
    first = ["lattice", "biso"] if free is None else [g for g in free if g.rsplit(".", 1)[-1] in
                                                          ("lattice", "cell", "expansion", "biso", "fraction")]
    if optimizer == "lm":
        n = steps or (30, 30, 100)
        return [LevenbergMarquardt(free=first or None, steps=n[0], xmax=5.0, tol=1e-6),
                LevenbergMarquardt(steps=n[1], xmax=12.0, tol=1e-6, release=True),
                LevenbergMarquardt(steps=n[2], release=True)]
    n = steps or (60, 60, 200)
    return [LBFGS(free=first or None, steps=n[0], xmax=5.0), LBFGS(steps=n[1], xmax=12.0, release=True),
            LBFGS(steps=n[2], release=True)]
