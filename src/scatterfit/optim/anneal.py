"""Simulated annealing by Langevin molecular dynamics on the loss: a melt-and-quench of the atom positions.

The potential is U(x) = energy_scale · L(x) in eV, where L is the stage's loss (data, energy and restraint terms
at the stage's weights). With an energy term of weight w in the stage, the default energy_scale = N / w makes
that term exactly the structure's potential energy in eV (minus a constant), so temperatures are physical
Kelvin for the interatomic potential, and the data and restraint terms act as extra potentials (as in hybrid
reverse Monte Carlo or EPSR's empirical potential). The temperature falls linearly from t_start to t_end K.

Integrator: BAOAB Langevin splitting (Leimkuhler & Matthews, Appl. Math. Res. Express 2013, 34), which samples
exp(−U/kT) with a small configurational error at the usual MD time steps. Units: positions Å, time fs, masses
amu, forces eV/Å, velocities Å/fs.

Positions here are the "positions" group's displacements (Å) from the starting structure. In a periodic cell
they are folded back to the minimum image of a lattice translation (the same structure), so atoms may diffuse
freely; a finite structure's displacements stay inside the group's bounds (velocities reflected there).
"""

from __future__ import annotations

import math

import torch

from scatterfit.errors import ScatterfitError

BOLTZMANN_EV = 8.617333262e-5  # eV/K
ACCELERATION = 9.648533212e-3  # (eV/Å)/amu in Å/fs²


def langevin_coefficients(timestep: float, friction: float) -> tuple[float, float]:
    """(c1, c2) of the O step, v ← c1·v + c2·sqrt(kT/m)·ξ, for a time step in fs and friction in 1/ps."""
    c1 = math.exp(-friction * 1e-3 * timestep)
    return c1, math.sqrt(max(1.0 - c1 * c1, 0.0))


def thermal_velocities(masses: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """Maxwell–Boltzmann velocities [N, 3] (Å/fs) at ``temperature`` K for masses [N] (amu)."""
    sigma = torch.sqrt(BOLTZMANN_EV * temperature * ACCELERATION / masses)[:, None]  # [N, 1] Å/fs
    xi = torch.randn((masses.shape[0], 3), generator=generator, dtype=masses.dtype).to(masses.device)
    return sigma * xi


def kinetic_temperature(velocities: torch.Tensor, masses: torch.Tensor) -> float:
    """Instantaneous temperature (K) of velocities [N, 3] (Å/fs) with masses [N] (amu): 2 KE / (3 N k_B)."""
    ke = 0.5 * float((masses[:, None] * velocities**2).sum()) / ACCELERATION  # eV
    return 2.0 * ke / (3 * velocities.shape[0] * BOLTZMANN_EV)


class LangevinIntegrator:
    """BAOAB steps of x [N, 3] (Å) and v [N, 3] (Å/fs) under forces from ``force(x) -> (U, F)``.

    Args:
        force: callable x [N, 3] → (U in eV as float, F [N, 3] eV/Å).
        masses: [N] amu.
        timestep: fs.
        friction: 1/ps.
        fold: callable x → (x, flips) applied after every drift (minimum image or reflection at bounds); flips
            multiplies the velocities (±1 per component) or is None.
        max_speed: Å/fs; faster atoms are slowed to it, direction kept (a guard against a start far from any
            minimum, whose released energy would otherwise blow the system apart; None: no cap).
    """

    def __init__(self, force, masses: torch.Tensor, timestep: float, friction: float, fold=None,
                 max_speed: float | None = None):
        self.force, self.masses, self.dt, self.fold = force, masses, float(timestep), fold
        self.max_speed = max_speed
        self.c1, self.c2 = langevin_coefficients(timestep, friction)
        self.inv_m = (ACCELERATION / masses)[:, None]  # [N, 1] (Å/fs²)/(eV/Å)

    def step(self, x, v, f, temperature: float, generator: torch.Generator):
        """One BAOAB step at ``temperature`` K; returns (x, v, f, U) with f the force at the new x."""
        half = 0.5 * self.dt
        v = v + half * f * self.inv_m                                   # B
        x, v = self._drift(x, v, half)                                  # A
        sigma = torch.sqrt(BOLTZMANN_EV * max(temperature, 0.0) * self.inv_m)  # [N, 1] Å/fs
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        v = self.c1 * v + self.c2 * sigma * xi                          # O
        x, v = self._drift(x, v, half)                                  # A
        u, f = self.force(x)
        v = v + half * f * self.inv_m                                   # B
        return x, v, f, u

    def _drift(self, x, v, dt):
        if self.max_speed is not None:
            speed = v.norm(dim=1, keepdim=True)
            v = v * torch.clamp(self.max_speed / speed.clamp_min(1e-300), max=1.0)
        x = x + dt * v
        if self.fold is not None:
            x, flip = self.fold(x)
            if flip is not None:
                v = v * flip
        return x, v


def energy_scale(loss, n_atoms: int, weights: dict | None, explicit: float | None = None) -> float:
    """eV per unit of loss: ``explicit``, or atoms / the weight (after the stage's ``weights``) of the first
    active energy term, so that term is the structure's energy in eV."""
    from scatterfit.loss import EnergyTerm

    if explicit is not None:
        return float(explicit)
    weights = weights or {}
    energy = [t for t in loss.terms if isinstance(t, EnergyTerm) and weights.get(t.name, t.weight) != 0]
    if not energy:
        raise ScatterfitError("an anneal stage without an energy term needs energy_scale (eV per unit of loss)")
    return n_atoms / float(weights.get(energy[0].name, energy[0].weight))


def displacement_fold(parametrisation, theta: torch.Tensor):
    """The fold of the "positions" displacements [N, 3] Å after a Langevin drift: the minimum image of a
    lattice translation in a periodic cell (the bounds must reach half the cell, else a one-line error says
    how far), reflection at 95 % of the bounds for a finite structure."""
    from scatterfit.structure.parametrisation import EDGE

    lo, hi = parametrisation.bounds["positions"]
    limit = min(-float(lo), float(hi)) * (1 - 2 * EDGE)
    structure = parametrisation.state(theta.detach()).structure
    if structure.cell is not None and all(structure.pbc):
        cell = structure.cell.detach()
        inverse = torch.linalg.inv(cell)
        reach = 0.5 * float(cell.abs().sum(0).max())  # the largest component of a minimum-image vector
        if reach > limit:
            raise ScatterfitError(f"an anneal stage in this cell needs bounds positions ≥ "
                                  f"{reach / (1 - 2 * EDGE) + 0.05:.1f} Å (half the cell), got {hi}")

        def fold(x):
            frac = x @ inverse
            return (frac - torch.round(frac)) @ cell, None
    else:
        wall = 0.95 * limit

        def fold(x):
            over, under = x > wall, x < -wall
            x = torch.where(over, 2 * wall - x, torch.where(under, -2 * wall - x, x))
            flip = 1.0 - 2.0 * (over | under).to(x.dtype)
            return x.clamp(-wall, wall), flip
    return fold
