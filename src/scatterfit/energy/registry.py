"""Energy models by name, for config files: ``make_potential("bks")``, ``make_potential("lj", pairs={...})``."""

from __future__ import annotations

import importlib

from scatterfit.errors import ScatterfitError


def _ase_calculator(calculator: str, **kwargs):
    from scatterfit.energy.ase_adapter import ASECalculatorEnergy

    module, _, cls = calculator.partition(":")
    if not cls:
        raise ScatterfitError(f"ase potential: calculator must look like 'module:Class', got '{calculator}'")
    try:
        factory = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ScatterfitError(f"ase potential: cannot import {calculator} ({exc})") from None
    return ASECalculatorEnergy(factory(**kwargs))


def _emt():
    from ase.calculators.emt import EMT

    from scatterfit.energy.ase_adapter import ASECalculatorEnergy

    return ASECalculatorEnergy(EMT(), name="emt")


def _builders() -> dict:
    from scatterfit.energy import pair
    from scatterfit.energy.chgnet import CHGNetEnergy
    from scatterfit.energy.coulomb import DSFCoulomb
    from scatterfit.energy.stillinger_weber import StillingerWeber
    from scatterfit.energy.tersoff import Tersoff
    from scatterfit.energy.xtb import XTBEnergy

    return {
        "chgnet": lambda **kw: CHGNetEnergy(**kw),
        "lennard-jones": lambda pairs, **kw: pair.LennardJones(pairs, **kw),
        "morse": lambda pairs, **kw: pair.Morse(pairs, **kw),
        "buckingham": lambda pairs, **kw: pair.Buckingham(pairs, **kw),
        "coulomb": lambda **kw: DSFCoulomb(**kw),
        "bks": lambda **kw: pair.bks_silica(**kw),
        "lj-argon": lambda: pair.lj_argon(),
        "stillinger-weber": lambda **kw: StillingerWeber(**kw),
        "tersoff": lambda **kw: Tersoff(**kw),
        "gfn2-xtb": lambda **kw: XTBEnergy(**kw),
        "emt": _emt,
        "ase": _ase_calculator,
    }


ALIASES = {"lj": "lennard-jones", "sw": "stillinger-weber", "xtb": "gfn2-xtb", "default": "chgnet"}
POTENTIALS = ("chgnet", "lennard-jones", "morse", "buckingham", "coulomb", "bks", "lj-argon", "stillinger-weber",
              "tersoff", "gfn2-xtb", "emt", "ase")


CLASSICAL = {
    ("O", "Si"): ("bks", {}),
    ("Si",): ("stillinger-weber", {}),
    ("C",): ("tersoff", {"element": "C"}),
}
"""The classical potentials whose parameters cover exactly these elements (sorted symbols) → (name, arguments):
BKS silica, Stillinger–Weber silicon, Tersoff carbon: covalent networks, whose bond angles the data alone leave
loose. Cheap enough for a box of a thousand atoms at every step of a melt-and-quench, where the machine-learning
default is not (CHGNet on this CPU). Not Lennard-Jones argon: refined with it, measured liquid Ar's first peak
moved from 3.71 to 3.75 Å, away from the experiment's 3.68 Å (the model's, not the sample's)."""


def classical_potential(elements) -> tuple[str, dict] | None:
    """(name, arguments) of the CLASSICAL potential made for exactly ``elements`` (symbols, any order), or None."""
    return CLASSICAL.get(tuple(sorted(set(elements))))


REGISTERED: dict = {}
"""Energy models registered at run time: name -> factory(**args)."""


def register_potential(name: str, factory) -> None:
    """Make ``factory(**args)`` (returning an object with ``name`` and ``energy(structure)``) available as
    ``potential = "name"`` in config files and to :func:`make_potential`."""
    REGISTERED[name.lower()] = factory


def make_potential(name: str = "chgnet", **args):
    """An EnergyModel by name (see POTENTIALS); ``args`` are the model's keyword arguments."""
    key = ALIASES.get(name.lower(), name.lower())
    builders = {**_builders(), **REGISTERED}
    if key not in builders:
        raise ScatterfitError(f"unknown potential '{name}' (known: {', '.join([*POTENTIALS, *REGISTERED])})")
    try:
        return builders[key](**args)
    except TypeError as exc:
        raise ScatterfitError(f"potential '{name}': bad arguments ({exc})") from None
