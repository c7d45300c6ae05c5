"""Free parameters θ ↔ (Structure, instrument parameters), with bounds by reparametrisation.

Groups: "lattice" (the cell parameters its crystal system leaves free, as relative scale factors at fixed
fractional coordinates: a for cubic, a and c for tetragonal and hexagonal, a, b, c for orthorhombic, and the
oblique angle too for monoclinic, see structure/spacegroup.LatticeRule; one isotropic scale for a structure
without symmetry, such as an amorphous box), "cell" (a, b, c in Å and
α, β, γ in degrees, at fixed fractional coordinates), "fractional" (fractional-coordinate displacements: the
free Wyckoff coordinates of the space group when the structure has one, so the group is kept
(structure/spacegroup.wyckoff_basis), every atom's three otherwise),
"positions" (cartesian displacements, Å), "occupancy" (per site, sites related by the space group sharing
one value; for a site shared by two species the first one's fraction of the site's total, which stays fixed: see
structure/spacegroup.OccupancyMap), "orbits" (displacements of the orbit representatives of a
symmetric structure, Å, [n_orbits, 3]: every atom of an orbit moves with it, so the point group is kept; needs
a structure with a SymmetryMap, as the symmetric cluster builder makes), "expansion" (isotropic scale of a
finite structure about its centroid, relative, default bounds 0.85–1.15: the "lattice" of a nanoparticle or
molecule), "biso" (Å²: one per site orbit when the structure declares a space group, e.g. from its CIF, so the
species sharing a site share it, as Rietveld programs refine them; one per species otherwise; a structure's
anisotropic tensors are then replaced by isotropic ones), "uaniso" (Å²: the anisotropic U components the site
symmetry of each orbit leaves free, structure/adp.py; reported as each orbit's U^ij in the CIF's axes and
U_eq), "background"
(coefficients of Chebyshev polynomials added to every data term's model, in the data's units, on x scaled to
[−1, 1] over the fit range;
its order is values["background_order"], default 2), and the scalar instrument/sample parameters "scale",
"qdamp", "qbroad", "delta1", "delta2", "spdiameter", "shell_thickness" (Å: with it the spdiameter envelope
becomes a spherical shell of that wall thickness around a hollow of diameter spdiameter), plus the instrument
parameters a forward model declares (``instrument``: the powder model's zero, U, V, W, ..., difc). A bounded
value v ∈ [lo, hi] is stored as u = logit((v − lo)/(hi − lo)), so every θ is unconstrained and every v stays
inside its bounds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.structure import EIGHT_PI2, Structure

log = logging.getLogger(__name__)

SCALAR_BOUNDS = {"scale": (1e-3, 1e3), "qdamp": (0.0, 0.5), "qbroad": (0.0, 0.5), "delta1": (0.0, 10.0),
                 "delta2": (0.0, 20.0), "spdiameter": (3.0, 2000.0), "shell_thickness": (1.0, 100.0)}
SCALAR_DEFAULTS = {"scale": 1.0, "qdamp": 0.0, "qbroad": 0.0, "delta1": 0.0, "delta2": 0.0, "spdiameter": None,
                   "shell_thickness": None}
GROUPS = ("lattice", "cell", "fractional", "positions", "orbits", "expansion", "biso", "uaniso", "occupancy",
          "background",
          *SCALAR_BOUNDS)
CELL_RELATIVE = 0.2  # "cell" lengths may change by ±20 %, angles by ±20°
EDGE = 0.02  # a starting value on (or nearer than this fraction to) a bound starts this fraction inside it,
#              where the logit map still passes gradients (at the bound itself they vanish)


def background_bounds(patterns) -> tuple[float, float]:
    """Bounds of the Chebyshev background coefficients for data ``patterns`` (arrays of y): ±3 times the largest
    |y|, never narrower than the default ±100."""
    import numpy as np

    reach = max([100.0] + [3 * float(np.abs(np.asarray(y, float)).max()) for y in patterns])
    return (-reach, reach)


@dataclass
class State:
    """What the forward models see: the structure and the instrument parameters (0-d tensors or None); for a
    mixture (structure/phases.py) also each phase's State, the first phase's structure being ``structure``."""

    structure: Structure
    params: dict
    phases: dict | None = None

    def phase_states(self) -> dict:
        """{phase name: State}; {"": self} for one phase."""
        return self.phases if self.phases else {"": self}


def cell_from_parameters(p: torch.Tensor) -> torch.Tensor:
    """Lattice vectors [3, 3] (rows, Å; a along x, b in the xy plane) from [a, b, c, α, β, γ] (Å, degrees),
    differentiable (ASE's convention)."""
    a, b, c = p[0], p[1], p[2]
    al, be, ga = torch.deg2rad(p[3]), torch.deg2rad(p[4]), torch.deg2rad(p[5])
    zero = torch.zeros_like(a)
    cx = torch.cos(be)
    cy = (torch.cos(al) - torch.cos(be) * torch.cos(ga)) / torch.sin(ga)
    cz = torch.sqrt(torch.clamp(1 - cx**2 - cy**2, min=1e-12))
    return torch.stack([torch.stack([a, zero, zero]),
                        torch.stack([b * torch.cos(ga), b * torch.sin(ga), zero]),
                        torch.stack([c * cx, c * cy, c * cz])])


def to_unbounded(v: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    f = ((v - lo) / (hi - lo)).clamp(EDGE, 1 - EDGE)
    return torch.log(f) - torch.log1p(-f)


def to_bounded(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.sigmoid(u)


class Parametrisation:
    """Maps a flat parameter vector to a State.

    Args:
        structure: the starting structure.
        free: names of the free groups (subset of GROUPS).
        values: starting values of scalar parameters (others take SCALAR_DEFAULTS).
        instrument: {name: (start, lo, hi)} scalar parameters a forward model reads from the state (e.g.
            PowderModel.parameters): they can be free, given values and bounds like the built-in scalars.
        bounds: {name: (lo, hi)} overriding SCALAR_BOUNDS; "cell" takes {a: (lo, hi), ..., gamma: (lo, hi)} in Å
            and degrees (default ±20 % and ±20° about the start; a narrow range pins an angle);
            "lattice" bounds are relative (default 0.8–1.2),
            "biso" absolute in Å² (default 0.01–20), "positions" and "orbits" a maximum displacement in Å
            (default 1.0).
    """

    def __init__(self, structure: Structure, free=(), values: dict | None = None, bounds: dict | None = None,
                 instrument: dict | None = None):
        instrument = dict(instrument or {})
        known = (*GROUPS, *instrument)
        unknown = [g for g in free if g not in known]
        if unknown:
            raise ScatterfitError(f"unknown parameter group(s) {unknown} (known: {', '.join(known)})")
        values = dict(values or {})
        background_order = int(values.pop("background_order", 2))
        if not 0 <= background_order <= 10:
            raise ScatterfitError(f"background_order must be 0..10, got {background_order}")
        self.instrument_names = list(instrument)
        defaults = {**SCALAR_DEFAULTS, **{k: v[0] for k, v in instrument.items()}}
        unknown = [k for k in values if k not in defaults]
        if unknown:
            raise ScatterfitError(f"unknown parameter(s) {unknown} (known: {', '.join(defaults)})")
        self.structure = structure
        self.free = list(free)
        self.bounds = {**SCALAR_BOUNDS, "lattice": (0.8, 1.2), "expansion": (0.85, 1.15), "biso": (0.01, 20.0),
                       "occupancy": (0.0, 1.0),
                       "positions": (-1.0, 1.0), "orbits": (-1.0, 1.0),
                       "fractional": (-0.1, 0.1), "background": (-100.0, 100.0),
                       **{k: (float(v[1]), float(v[2])) for k, v in instrument.items()}, **(bounds or {})}
        for g in ("positions", "orbits"):
            if g in (bounds or {}) and not isinstance(bounds[g], tuple):
                m = float(bounds[g])
                self.bounds[g] = (-m, m)
        self.values = {**defaults, **values}
        if "spdiameter" in self.free and self.values["spdiameter"] is None:
            self.values["spdiameter"] = 50.0
        if "shell_thickness" in self.free and self.values["shell_thickness"] is None:
            self.values["shell_thickness"] = 10.0
        if self.values["shell_thickness"] is not None and self.values["spdiameter"] is None:
            raise ScatterfitError("shell_thickness needs spdiameter, the diameter of the shell's hollow (give it a "
                                  "value or refine it)")
        dt, dev = structure.dtype, structure.device
        self.species = sorted(set(structure.numbers.tolist()))
        self.species_index = torch.tensor([self.species.index(z) for z in structure.numbers.tolist()], device=dev)
        self.adp_labels = None  # per species (Biso_X) unless the structure declares its space group
        adp_index = self.species_index
        if structure.space_group is not None and structure.cell is not None and structure.periodic:
            from scatterfit.structure.spacegroup import site_orbits

            index, labels = site_orbits(structure)
            symbols_of = [{int(z) for z in structure.numbers[torch.as_tensor(index) == k].tolist()}
                          for k in range(len(labels))]
            if len(labels) != len(self.species) or any(len(z) != 1 for z in symbols_of):
                adp_index, self.adp_labels = torch.as_tensor(index, device=dev), labels
        self.adp_index = adp_index
        biso0 = torch.stack([structure.biso[adp_index == k].mean()
                             for k in range(int(adp_index.max()) + 1)]).detach()
        self._frac = None
        self._orbit_transforms = None
        if "orbits" in self.free:
            sym = structure.symmetry
            if sym is None:
                raise ScatterfitError("'orbits' is free but the structure has no point-group map (build it with a "
                                      "symmetric builder)")
            self._orbit_index = torch.as_tensor(sym.orbit, device=dev)
            self._orbit_transforms = torch.as_tensor(sym.transforms, dtype=dt, device=dev)  # [N, 3, 3]
        if structure.cell is not None:
            self._frac = structure.positions.detach() @ torch.linalg.inv(structure.cell.detach())
        one = torch.ones((), dtype=dt, device=dev)
        self.lattice_rule = None
        lattice0 = one
        if "lattice" in self.free and structure.cell is not None and "cell" not in self.free:
            from scatterfit.structure.spacegroup import lattice_rule

            self.lattice_rule = lattice_rule(structure)
            if self.lattice_rule.note:
                log.warning(f"{self.lattice_rule.note}: 'lattice' scales it isotropically (give a conventional "
                            "cell, or free 'cell')")
            lattice0 = torch.ones(self.lattice_rule.size, dtype=dt, device=dev)
        self._occupancy = None
        occupancy0 = torch.ones(0, dtype=dt, device=dev)
        if "occupancy" in self.free:
            from scatterfit.structure.spacegroup import occupancy_map

            self._occupancy = occupancy_map(structure)
            occupancy0 = torch.as_tensor(self._occupancy.start, dtype=dt, device=dev)
            self._occupancy_tensors = tuple(torch.as_tensor(a, device=dev) for a in (
                self._occupancy.index, self._occupancy.offset, self._occupancy.factor))
        self._wyckoff = None
        fractional0 = torch.zeros_like(structure.positions.detach())
        if "fractional" in self.free and structure.cell is not None:
            from scatterfit.structure.spacegroup import wyckoff_basis

            basis = wyckoff_basis(structure)
            if basis is not None:  # the group's free coordinates only
                self._wyckoff = torch.as_tensor(basis, dtype=dt, device=dev)  # [3N, K]
                fractional0 = torch.zeros(basis.shape[1], dtype=dt, device=dev)
        self._adp = None
        uaniso0 = torch.zeros(0, dtype=dt, device=dev)
        if "uaniso" in self.free:
            uaniso0 = self._anisotropic(structure, bounds)
        self._init = {"lattice": lattice0, "expansion": one.clone(), "biso": biso0, "uaniso": uaniso0,
                      "positions": torch.zeros_like(structure.positions.detach()),
                      "fractional": fractional0, "occupancy": occupancy0,
                      "orbits": torch.zeros((0 if structure.symmetry is None else structure.symmetry.n_orbits, 3),
                                            dtype=dt, device=dev),
                      "background": torch.zeros(background_order + 1, dtype=dt, device=dev)}
        if structure.cell is not None:
            from ase.geometry import cell_to_cellpar

            par = torch.tensor(cell_to_cellpar(structure.cell.detach().cpu().numpy()), dtype=dt, device=dev)
            self._init["cell"] = par
            lo = torch.cat([par[:3] * (1 - CELL_RELATIVE), par[3:] - 100 * CELL_RELATIVE])
            hi = torch.cat([par[:3] * (1 + CELL_RELATIVE), par[3:] + 100 * CELL_RELATIVE])
            given = self.bounds.get("cell")
            if isinstance(given, dict):  # {a: (lo, hi), ..., gamma: (lo, hi)}: Å for lengths, degrees for angles
                names = ("a", "b", "c", "alpha", "beta", "gamma")
                unknown = sorted(set(given) - set(names))
                if unknown:
                    raise ScatterfitError(f"bounds of 'cell': unknown cell parameter(s) {unknown} "
                                          f"(use {', '.join(names)})")
                for k, name in enumerate(names):
                    if name in given:
                        lo[k], hi[k] = float(given[name][0]), float(given[name][1])
                        if not lo[k] <= par[k] <= hi[k]:
                            raise ScatterfitError(f"bounds of 'cell': the start {name} = {float(par[k]):.4f} lies "
                                                  f"outside [{float(lo[k])}, {float(hi[k])}]")
                self.bounds["cell"] = (lo, hi)
            elif given is not None and not isinstance(given[0], torch.Tensor):
                raise ScatterfitError("bounds of 'cell' take a table {a = [lo, hi], alpha = [lo, hi], ...} (lengths in "
                                      "Å, angles in degrees), not one [lo, hi] pair for all six")
            else:
                self.bounds.setdefault("cell", (lo, hi))

        for k, v in self.values.items():
            if v is not None:
                self._init[k] = torch.tensor(float(v), dtype=dt, device=dev)
        for g in self.free:
            lo, hi = self.bounds[g]
            if not bool(torch.all(torch.as_tensor(lo).cpu() < torch.as_tensor(hi).cpu())):
                raise ScatterfitError(f"bounds of '{g}' are empty: ({lo}, {hi})")
            if g in self.instrument_names and not lo <= float(self._init[g]) <= hi:
                raise ScatterfitError(f"the start of '{g}' ({float(self._init[g])}) lies outside its bounds "
                                      f"[{lo}, {hi}]")
        for g in ("lattice", "cell", "fractional"):
            if g in self.free and structure.cell is None:
                raise ScatterfitError(f"'{g}' is free but the structure has no cell")
        if "expansion" in self.free and structure.cell is not None and any(structure.pbc):
            raise ScatterfitError("'expansion' is for finite structures; use 'lattice' for a periodic one")

        self.shapes = {g: tuple(self._init[g].shape) for g in self.free}

    # ------------------------------------------------------------------ vector <-> values
    def initial_vector(self) -> torch.Tensor:
        parts = [to_unbounded(self._init[g], *self.bounds[g]).reshape(-1) for g in self.free]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=self.structure.dtype, device=self.structure.device)

    def unpack(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Bounded values of the free groups."""
        out, k = {}, 0
        for g in self.free:
            n = int(math.prod(self.shapes[g]))
            out[g] = to_bounded(theta[k:k + n], *self.bounds[g]).reshape(self.shapes[g])
            k += n
        return out

    def group_slice(self, group: str) -> slice:
        """Where the free ``group`` lives in θ."""
        k = 0
        for g in self.free:
            n = int(math.prod(self.shapes[g]))
            if g == group:
                return slice(k, k + n)
            k += n
        raise ScatterfitError(f"'{group}' is not a free parameter group")

    def with_values(self, theta: torch.Tensor, group: str, value: torch.Tensor) -> torch.Tensor:
        """θ with the free ``group`` set to ``value`` (bounded units, clamped just inside its bounds)."""
        out = theta.detach().clone()
        out[self.group_slice(group)] = to_unbounded(value.detach(), *self.bounds[group]).reshape(-1)
        return out

    def state(self, theta: torch.Tensor, overrides: dict | None = None) -> State:
        """The State at θ; ``overrides`` {group: bounded value} replaces groups' values (e.g. the positions of
        a molecular-dynamics stage, which moves them in Å rather than through θ)."""
        v = {**{k: t for k, t in self._init.items()}, **self.unpack(theta), **(overrides or {})}
        s = self.structure
        cell, pos = s.cell, s.positions
        if "cell" in self.free:
            cell = cell_from_parameters(v["cell"])
        if "lattice" in self.free:
            cell = self._lattice_cell(s.cell.detach() if "cell" not in self.free else cell, v["lattice"])
        if {"cell", "lattice", "fractional"} & set(self.free):
            frac = self._frac
            if "fractional" in self.free:
                shift = v["fractional"]
                if self._wyckoff is not None:  # Wyckoff coordinates u → fractional displacements of every atom
                    shift = (self._wyckoff @ shift).reshape(frac.shape)
                frac = frac + shift
            pos = frac @ cell
        if "expansion" in self.free:
            centre = pos.detach().mean(0)
            pos = centre + (pos - centre) * v["expansion"]
        if "orbits" in self.free:
            pos = pos + torch.einsum("nij,nj->ni", self._orbit_transforms, v["orbits"][self._orbit_index])
        if "positions" in self.free:
            pos = pos + v["positions"]
        biso, uaniso = (v["biso"][self.adp_index], None) if "biso" in self.free else (s.biso, s.uaniso)
        if self._adp is not None:  # U of every atom from the free components; Biso its isotropic equivalent
            uaniso = torch.einsum("nabk,k->nab", self._adp_tensors, v["uaniso"])
            biso = EIGHT_PI2 * torch.diagonal(uaniso, dim1=1, dim2=2).sum(1) / 3.0
        occupancy = s.occupancy
        if "occupancy" in self.free:
            index, offset, factor = self._occupancy_tensors
            occupancy = offset.to(pos.dtype) + factor.to(pos.dtype) * v["occupancy"][index]
        structure = s.with_(positions=pos, cell=cell, biso=biso, uaniso=uaniso, occupancy=occupancy)
        params = {k: v.get(k) for k in (*SCALAR_DEFAULTS, *self.instrument_names)}
        params["background"] = v["background"] if "background" in self.free else None
        return State(structure, params)

    def _anisotropic(self, structure: Structure, bounds: dict | None) -> torch.Tensor:
        """Set up the "uaniso" group (structure/adp.py): the tensors of its basis, per-component bounds (diagonal
        components 10⁻⁵–0.1 Å², or [parameters].bounds.uaniso; off-diagonal ones ± half the upper bound); returns
        the starting components."""
        from scatterfit.structure.adp import anisotropic_basis

        if "biso" in self.free:
            raise ScatterfitError("'biso' and 'uaniso' are both free: refine isotropic or anisotropic ADPs")
        if structure.cell is None or not structure.periodic:
            raise ScatterfitError("'uaniso' is free but the structure is not a crystal (no cell)")
        dt, dev = structure.dtype, structure.device
        self._adp = anisotropic_basis(structure)
        self._adp_tensors = torch.as_tensor(self._adp.tensors, dtype=dt, device=dev)
        lo, hi = (float(x) for x in (bounds or {}).get("uaniso", (1e-5, 0.1)))
        diagonal = torch.as_tensor(self._adp.diagonal, device=dev)
        self.bounds["uaniso"] = (torch.where(diagonal, lo, -hi / 2).to(dt), torch.where(diagonal, hi, hi / 2).to(dt))
        start = torch.as_tensor(self._adp.start, dtype=dt, device=dev)
        return torch.where(diagonal, start.clamp(min=lo), start)

    def orbit_representatives(self, theta: torch.Tensor) -> torch.Tensor:
        """[n_orbits, 3] Å: each orbit's representative point at θ (SymmetryMap.representatives)."""
        if self._orbit_transforms is None:
            raise ScatterfitError("'orbits' is not a free parameter group")
        return self.structure.symmetry.representatives(self.state(theta).structure.positions)

    def _lattice_cell(self, cell: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
        """The cell with the "lattice" scale factors applied by the crystal system's rule (LatticeRule)."""
        rule = self.lattice_rule
        if rule is None:
            return cell * scales.reshape(-1)[0]
        ones = torch.ones(1, dtype=scales.dtype, device=scales.device)
        factors = torch.cat([scales.reshape(-1), ones])[[k if k >= 0 else -1 for k in rule.index]]  # [6]
        if not rule.angles:
            return cell * factors[:3, None]
        from ase.geometry import cell_to_cellpar

        par = torch.as_tensor(cell_to_cellpar(cell.detach().cpu().numpy()), dtype=cell.dtype, device=cell.device)
        return cell_from_parameters(par * factors)

    def report(self, theta: torch.Tensor) -> dict:
        """Every parameter's value as plain numbers (lattice as a, b, c in Å; Biso and Uiso per species)."""
        from ase.data import chemical_symbols

        st = self.state(theta.detach())
        out = {k: (None if val is None else float(val)) for k, val in st.params.items() if k != "background"}
        if st.params.get("background") is not None:
            out["background"] = [float(c) for c in st.params["background"]]
        if "expansion" in self.free:
            out["expansion"] = float(self.unpack(theta.detach())["expansion"])
        if self.lattice_rule is not None:
            out["crystal_system"] = self.lattice_rule.system
        if self._occupancy is not None:  # a site's occupancy, or the first species' fraction of a shared site
            values = self.unpack(theta.detach())["occupancy"]
            out.update({f"occupancy[{label}]": float(x) for label, x in zip(self._occupancy.labels, values)})
        if st.structure.cell is not None:
            from ase.geometry import cell_to_cellpar

            a, b, c, alpha, beta, gamma = cell_to_cellpar(st.structure.cell.detach().cpu().numpy()).tolist()
            out.update({"a": a, "b": b, "c": c, "alpha": alpha, "beta": beta, "gamma": gamma})
        if self._adp is not None:  # each orbit's U^ij in the CIF's axes, and U_eq
            from scatterfit.structure.adp import COMPONENTS, NAMES
            from scatterfit.structure.cif import cartesian_to_cif_u

            cell = st.structure.cell.detach().cpu().numpy()
            tensors = st.structure.uaniso.detach().cpu().numpy()
            for rep, label in zip(self._adp.representative, self._adp.labels):
                u = cartesian_to_cif_u(tensors[rep], cell)
                out.update({f"{name}[{label}]": float(u[ij]) for name, ij in zip(NAMES, COMPONENTS)})
                out[f"Ueq[{label}]"] = float(tensors[rep].trace() / 3.0)
            return out
        if self.adp_labels is not None:  # one ADP per site orbit
            for k, label in enumerate(self.adp_labels):
                bk = float(st.structure.biso[self.adp_index == k].mean())
                out[f"Biso[{label}]"] = bk
                out[f"Uiso[{label}]"] = bk / (8 * math.pi**2)
            return out
        for z in self.species:
            bz = float(st.structure.biso[st.structure.numbers == z].mean())
            out[f"Biso_{chemical_symbols[z]}"] = bz
            out[f"Uiso_{chemical_symbols[z]}"] = bz / (8 * math.pi**2)
        return out
