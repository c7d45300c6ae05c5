"""Energies of structures: the EnergyModel contract and its implementations (see base.py)."""

from scatterfit.energy.ase_adapter import ASECalculatorEnergy
from scatterfit.energy.base import EnergyModel, SumEnergy, batch_energies, forces
from scatterfit.energy.chgnet import CHGNetEnergy, default_potential
from scatterfit.energy.coulomb import DSFCoulomb
from scatterfit.energy.pair import Buckingham, LennardJones, Morse, PairPotential, bks_silica, lj_argon
from scatterfit.energy.stillinger_weber import StillingerWeber
from scatterfit.energy.tersoff import Tersoff
from scatterfit.energy.xtb import XTBEnergy

__all__ = ["ASECalculatorEnergy", "EnergyModel", "SumEnergy", "batch_energies", "forces", "CHGNetEnergy",
           "default_potential", "DSFCoulomb", "Buckingham", "LennardJones", "Morse", "PairPotential", "bks_silica",
           "lj_argon", "StillingerWeber", "Tersoff", "XTBEnergy"]
