"""Torch-native pair potentials (finite and periodic): Lennard-Jones, Morse, Buckingham, and the BKS silica
model (Buckingham + damped-shifted-force Coulomb).

Each pair potential sums φ_ab(r)·S(r) over pairs i<j within the cutoff, where S is a C² switch from 1 at
``r_on`` to 0 at the cutoff (x = (r − r_on)/(r_c − r_on), S = 1 − 10x³ + 15x⁴ − 6x⁵), so energy and forces are
continuous and φ itself is untouched below ``r_on``. Parameters are given per element pair ("Si-O") or for all
pairs ("*"). Units: Å, eV.
"""

from __future__ import annotations

import torch

from scatterfit.energy.coulomb import DSFCoulomb
from scatterfit.errors import ScatterfitError
from scatterfit.structure.geometry import atomic_number, parse_pair
from scatterfit.structure.neighbours import NeighbourCache, Neighbours, pair_distances, reused_neighbours
from scatterfit.structure.structure import Structure


def smooth_switch(r: torch.Tensor, r_on: float, r_cut: float) -> torch.Tensor:
    """C² switching function: 1 below r_on, 0 above r_cut, quintic in between. r: [P] Å."""
    x = ((r - r_on) / (r_cut - r_on)).clamp(0.0, 1.0)
    return 1 - x**3 * (10 - 15 * x + 6 * x * x)


def _pair_key(spec) -> tuple[int, int] | str:
    if spec == "*":
        return "*"
    a, b = (atomic_number(p) for p in (parse_pair(spec) if isinstance(spec, str) else spec))
    return (min(a, b), max(a, b))


class PairPotential:
    """Base class: E = Σ_{i<j} φ_{Z_i Z_j}(r_ij) S(r_ij).

    Args:
        parameters: {pair: {name: value}}, pair "A-B" or "*"; pairs with no entry do not interact.
        cutoff: Å.
        r_on: start of the switch, Å (default 0.9·cutoff).
    """

    name = "pair"
    parameter_names: tuple[str, ...] = ()
    form: str | None = None  # the compiled kernel's functional form (energy/_pair_kernels.FORMS), None: torch only

    def __init__(self, parameters: dict, cutoff: float, r_on: float | None = None):
        if not parameters:
            raise ScatterfitError(f"{self.name}: no pair parameters given")
        self.table = {}
        for spec, values in parameters.items():
            missing = [k for k in self.parameter_names if k not in values]
            extra = [k for k in values if k not in self.parameter_names]
            if missing or extra:
                raise ScatterfitError(f"{self.name} pair '{spec}': needs exactly {', '.join(self.parameter_names)}")
            self.table[_pair_key(spec)] = {k: float(v) for k, v in values.items()}
        self.cutoff = float(cutoff)
        self.r_on = 0.9 * self.cutoff if r_on is None else float(r_on)
        if not 0 < self.r_on < self.cutoff:
            raise ScatterfitError(f"{self.name}: need 0 < r_on < cutoff, got r_on {self.r_on}, cutoff {self.cutoff}")
        self.cache = NeighbourCache()
        self._selected: tuple | None = None  # (the list, its interacting pairs, their parameters, numbers)

    def phi(self, r: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pair energy φ(r), eV; r and every p[name] are [P]."""
        raise NotImplementedError

    def _pair_parameters(self, za: torch.Tensor, zb: torch.Tensor):
        lo, hi = torch.minimum(za, zb), torch.maximum(za, zb)
        active = torch.zeros_like(lo, dtype=torch.bool)
        values = {k: torch.zeros(lo.shape, dtype=torch.float64, device=lo.device) for k in self.parameter_names}
        default = self.table.get("*")
        if default is not None:
            active[:] = True
            for k in values:
                values[k][:] = default[k]
        for key, entry in self.table.items():
            if key == "*":
                continue
            m = (lo == key[0]) & (hi == key[1])
            active |= m
            for k in values:
                values[k][m] = entry[k]
        return active, values

    def _interacting(self, structure: Structure) -> tuple[Neighbours, dict] | None:
        """The pairs within the cutoff (a periodic structure's list reused while atoms move less than the skin
        allows: its pairs beyond the cutoff have S = 0) that have parameters, and those parameters [P]."""
        nb = reused_neighbours(structure, self.cutoff, self.cache)
        if self._selected is None or self._selected[0] is not nb or \
                not torch.equal(self._selected[3], structure.numbers):
            z = structure.numbers
            active, p = self._pair_parameters(z[nb.i], z[nb.j])
            sel = active.nonzero().squeeze(1)
            self._selected = (nb, nb.subset(sel), {k: v[sel] for k, v in p.items()}, z.clone(), None)
        return None if len(self._selected[1]) == 0 else self._selected[1:3]

    def _compiled_arrays(self) -> tuple:
        """(pair arrays, params [P, 5]) of the selected pairs for the compiled kernel, made once per selection."""
        import numpy as np

        from scatterfit.energy._pair_kernels import pair_arrays

        nb, sub, p, z, arrays = self._selected
        if arrays is None:
            params = np.zeros((len(sub), 5))
            for k, name in enumerate(self.parameter_names):
                params[:, k] = p[name].cpu().numpy()
            arrays = (pair_arrays(sub), params)
            self._selected = (nb, sub, p, z, arrays)
        return arrays

    def energy(self, structure: Structure) -> torch.Tensor:
        interacting = self._interacting(structure)
        if interacting is None:
            return structure.positions.sum() * 0.0
        nb, p = interacting
        from scatterfit.energy._pair_kernels import FORMS, compiled, radial_energy

        def expressions(positions, cell, occupancy):  # the sum by torch expressions
            r = pair_distances(structure.with_(positions=positions, cell=cell), nb)
            values = {k: v.to(r.dtype) for k, v in p.items()}
            return (occupancy[nb.i] * occupancy[nb.j] * self.phi(r, values)
                    * smooth_switch(r, self.r_on, self.cutoff)).sum()

        if self.form is not None and compiled(structure):  # one compiled pass: value and analytic gradients
            pairs, params = self._compiled_arrays()
            return radial_energy(structure, structure.occupancy, pairs, FORMS[self.form], params, self.r_on,
                                 self.cutoff, expressions)
        return expressions(structure.positions, structure.cell, structure.occupancy)


class LennardJones(PairPotential):
    """φ = 4ε[(σ/r)¹² − (σ/r)⁶]; ε in eV, σ in Å. Minimum −ε at r = 2^(1/6) σ (below r_on)."""

    name = "lennard-jones"
    parameter_names = ("epsilon", "sigma")
    form = "lennard-jones"

    def __init__(self, parameters: dict, cutoff: float | None = None, r_on: float | None = None):
        sigma_max = max(float(v["sigma"]) for v in parameters.values()) if parameters else 1.0
        super().__init__(parameters, 2.5 * sigma_max if cutoff is None else cutoff, r_on)

    def phi(self, r, p):
        x6 = (p["sigma"] / r) ** 6
        return 4 * p["epsilon"] * (x6 * x6 - x6)


class Morse(PairPotential):
    """φ = D[(1 − e^{−α(r − r0)})² − 1]; D in eV, α in Å⁻¹, r0 in Å. Minimum −D at r0."""

    name = "morse"
    parameter_names = ("D", "alpha", "r0")
    form = "morse"

    def phi(self, r, p):
        e = torch.exp(-p["alpha"] * (r - p["r0"]))
        return p["D"] * ((1 - e) ** 2 - 1)


class Buckingham(PairPotential):
    """φ = A e^{−r/ρ} − C/r⁶ + W (σ_w/r)²⁴; A in eV, ρ in Å, C in eV·Å⁶; the optional steep wall (W in eV,
    σ_w in Å; 0 by default) guards the unphysical collapse of Buckingham potentials at short range."""

    name = "buckingham"
    parameter_names = ("A", "rho", "C", "W", "sigma_w")
    form = "buckingham"

    def __init__(self, parameters: dict, cutoff: float = 10.0, r_on: float | None = None):
        filled = {k: {"W": 0.0, "sigma_w": 1.0, **v} for k, v in parameters.items()}
        super().__init__(filled, cutoff, r_on)

    def phi(self, r, p):
        return p["A"] * torch.exp(-r / p["rho"]) - p["C"] / r**6 + p["W"] * (p["sigma_w"] / r) ** 24


def bks_silica(cutoff: float = 10.0, coulomb_cutoff: float = 10.0, damping: float = 0.25, walls: bool = True):
    """BKS silica (van Beest, Kramer & van Santen, PRL 64, 1955 (1990)): Buckingham Si–O and O–O with charges
    q_Si = +2.4 e, q_O = −1.2 e, Coulomb by damped shifted force (Fennell & Gezelter 2006).

    BKS collapses below ~1.2 Å (Si–O) because C/r⁶ beats the exponential; a steep r⁻²⁴ wall (1 eV at 1.38 Å
    for Si–O, at 1.80 Å for O–O; 0.02 eV at the Si–O bond length 1.61 Å, where it shortens relaxed quartz
    bonds by less than 0.01 Å) keeps a random start from
    falling into it, as is common practice with BKS (``walls=False`` gives plain BKS).
    """
    from scatterfit.energy.base import SumEnergy

    short = Buckingham({
        "O-O": {"A": 1388.7730, "rho": 1 / 2.76000, "C": 175.0000, "W": 1.0 if walls else 0.0, "sigma_w": 1.80},
        "Si-O": {"A": 18003.7572, "rho": 1 / 4.87318, "C": 133.5381, "W": 1.0 if walls else 0.0, "sigma_w": 1.38},
    }, cutoff=cutoff)
    coulomb = DSFCoulomb({"Si": 2.4, "O": -1.2}, cutoff=coulomb_cutoff, alpha=damping)
    return SumEnergy([short, coulomb], name="bks")


def lj_argon() -> LennardJones:
    """Argon Lennard-Jones, ε/k_B = 119.8 K (0.010323 eV), σ = 3.405 Å (Rahman 1964), cutoff 2.5σ."""
    return LennardJones({"Ar-Ar": {"epsilon": 119.8 * 8.617333262e-5, "sigma": 3.405}})


__all__ = ["PairPotential", "LennardJones", "Morse", "Buckingham", "bks_silica", "lj_argon", "smooth_switch"]
