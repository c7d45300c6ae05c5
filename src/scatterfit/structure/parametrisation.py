"""Free parameters θ ↔ (Structure, instrument parameters), with bounds by reparametrisation.

Groups: "lattice" (isotropic scale of the cell at fixed fractional coordinates), "positions" (cartesian
displacements, Å), "biso" (one Biso per species, Å²), and the scalar instrument/sample parameters "scale",
"qdamp", "qbroad", "delta1", "delta2", "spdiameter". A bounded value v ∈ [lo, hi] is stored as
u = logit((v − lo)/(hi − lo)), so every θ is unconstrained and every v stays inside its bounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.structure import Structure

SCALAR_BOUNDS = {"scale": (1e-3, 1e3), "qdamp": (0.0, 0.5), "qbroad": (0.0, 0.5), "delta1": (0.0, 10.0),
                 "delta2": (0.0, 20.0), "spdiameter": (3.0, 2000.0)}
SCALAR_DEFAULTS = {"scale": 1.0, "qdamp": 0.0, "qbroad": 0.0, "delta1": 0.0, "delta2": 0.0, "spdiameter": None}
GROUPS = ("lattice", "positions", "biso", *SCALAR_BOUNDS)
EDGE = 0.02  # a starting value on (or nearer than this fraction to) a bound starts this fraction inside it,
#              where the logit map still passes gradients (at the bound itself they vanish)


@dataclass
class State:
    """What the forward models see: the structure and the instrument parameters (0-d tensors or None)."""

    structure: Structure
    params: dict


def _to_unbounded(v: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    f = ((v - lo) / (hi - lo)).clamp(EDGE, 1 - EDGE)
    return torch.log(f) - torch.log1p(-f)


def _to_bounded(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.sigmoid(u)


class Parametrisation:
    """Maps a flat parameter vector to a State.

    Args:
        structure: the starting structure.
        free: names of the free groups (subset of GROUPS).
        values: starting values of scalar parameters (others take SCALAR_DEFAULTS).
        bounds: {name: (lo, hi)} overriding SCALAR_BOUNDS; "lattice" bounds are relative (default 0.8–1.2),
            "biso" absolute in Å² (default 0.01–20), "positions" a maximum displacement in Å (default 1.0).
    """

    def __init__(self, structure: Structure, free=(), values: dict | None = None, bounds: dict | None = None):
        unknown = [g for g in free if g not in GROUPS]
        if unknown:
            raise ScatterfitError(f"unknown parameter group(s) {unknown} (known: {', '.join(GROUPS)})")
        values = dict(values or {})
        unknown = [k for k in values if k not in SCALAR_DEFAULTS]
        if unknown:
            raise ScatterfitError(f"unknown parameter(s) {unknown} (known: {', '.join(SCALAR_DEFAULTS)})")
        self.structure = structure
        self.free = list(free)
        self.bounds = {**SCALAR_BOUNDS, "lattice": (0.8, 1.2), "biso": (0.01, 20.0), "positions": (-1.0, 1.0),
                       **(bounds or {})}
        if "positions" in (bounds or {}) and not isinstance(bounds["positions"], tuple):
            m = float(bounds["positions"])
            self.bounds["positions"] = (-m, m)
        self.values = {**SCALAR_DEFAULTS, **values}
        if "spdiameter" in self.free and self.values["spdiameter"] is None:
            self.values["spdiameter"] = 50.0
        dt = structure.dtype
        self.species = sorted(set(structure.numbers.tolist()))
        self.species_index = torch.tensor([self.species.index(z) for z in structure.numbers.tolist()])
        biso0 = torch.stack([structure.biso[structure.numbers == z].mean() for z in self.species]).detach()
        self._frac = None
        if structure.cell is not None:
            self._frac = structure.positions.detach() @ torch.linalg.inv(structure.cell.detach())
        self._init = {"lattice": torch.ones((), dtype=dt), "biso": biso0,
                      "positions": torch.zeros_like(structure.positions.detach())}
        for k, v in self.values.items():
            if v is not None:
                self._init[k] = torch.tensor(float(v), dtype=dt)
        for g in self.free:
            lo, hi = self.bounds[g]
            if not lo < hi:
                raise ScatterfitError(f"bounds of '{g}' are empty: ({lo}, {hi})")
        if "lattice" in self.free and structure.cell is None:
            raise ScatterfitError("'lattice' is free but the structure has no cell")
        self.shapes = {g: tuple(self._init[g].shape) for g in self.free}

    # ------------------------------------------------------------------ vector <-> values
    def initial_vector(self) -> torch.Tensor:
        parts = [_to_unbounded(self._init[g], *self.bounds[g]).reshape(-1) for g in self.free]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=self.structure.dtype)

    def unpack(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Bounded values of the free groups."""
        out, k = {}, 0
        for g in self.free:
            n = int(math.prod(self.shapes[g]))
            out[g] = _to_bounded(theta[k:k + n], *self.bounds[g]).reshape(self.shapes[g])
            k += n
        return out

    def state(self, theta: torch.Tensor) -> State:
        v = {**{k: t for k, t in self._init.items()}, **self.unpack(theta)}
        s = self.structure
        cell, pos = s.cell, s.positions
        if "lattice" in self.free:
            cell = s.cell.detach() * v["lattice"]
            pos = self._frac @ cell
        if "positions" in self.free:
            pos = pos + v["positions"]
        biso = v["biso"][self.species_index] if "biso" in self.free else s.biso
        structure = s.with_(positions=pos, cell=cell, biso=biso)
        params = {k: v.get(k) for k in SCALAR_DEFAULTS}
        return State(structure, params)

    def report(self, theta: torch.Tensor) -> dict:
        """Every parameter's value as plain numbers (lattice as a, b, c in Å; Biso and Uiso per species)."""
        from ase.data import chemical_symbols

        st = self.state(theta.detach())
        out = {k: (None if val is None else float(val)) for k, val in st.params.items()}
        if st.structure.cell is not None:
            a, b, c = st.structure.cell.detach().norm(dim=1).tolist()
            out.update({"a": a, "b": b, "c": c})
        for z in self.species:
            bz = float(st.structure.biso[st.structure.numbers == z].mean())
            out[f"Biso_{chemical_symbols[z]}"] = bz
            out[f"Uiso_{chemical_symbols[z]}"] = bz / (8 * math.pi**2)
        return out
