"""Atomic scattering factors: X-ray f0(Q) (Waasmaier–Kirfel), anomalous f′/f″ (Chantler, via xraydb) and neutron
coherent scattering lengths b_c (via periodictable).

The Waasmaier–Kirfel coefficients are xraydb's table, stored in the package as JSON (data/waasmaier_kirfel.json,
written by :func:`write_waasmaier_table`; a test checks it equals xraydb's): reading it takes
milliseconds where opening xraydb's database takes 0.3 s of every command's start.

The tables are read once into a :class:`ScatteringFactors` object (torch tensors) so the forward models stay
pure torch. Units: X-ray factors in electrons, neutron lengths in fm, Q in Å⁻¹.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from scatterfit.errors import ScatterfitError

RADIATIONS = ("xray", "neutron", "unit")  # "unit": point scatterers, f = 1 (simulations made that way)


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]


WAASMAIER_TABLE = Path(__file__).with_name("data") / "waasmaier_kirfel.json"


@lru_cache(maxsize=None)
def _waasmaier_rows() -> dict[str, tuple[float, tuple[float, ...], tuple[float, ...]]]:
    """{ion symbol: (offset, scales[5], exponents[5])}: the Waasmaier–Kirfel table (read once)."""
    rows = json.loads(WAASMAIER_TABLE.read_text())["ions"]
    return {ion: (float(c), tuple(a), tuple(b)) for ion, (c, a, b) in rows.items()}


def waasmaier_rows_from_xraydb() -> dict[str, tuple[float, tuple[float, ...], tuple[float, ...]]]:
    """The same table read from xraydb's database (what the bundled JSON is written from)."""
    import xraydb

    rows = xraydb.get_xraydb().get_cache("Waasmaier")
    return {r.ion: (float(r.offset), tuple(json.loads(r.scale)), tuple(json.loads(r.exponents))) for r in rows}


def write_waasmaier_table(path: Path = WAASMAIER_TABLE) -> None:
    """Write xraydb's Waasmaier–Kirfel table to ``path`` as JSON."""
    import xraydb

    table = {"source": f"xraydb {xraydb.__version__}: D. Waasmaier and A. Kirfel, Acta Cryst. A51, 416 (1995); "
                       "f0(s) = c + sum_k a_k exp(-b_k s^2), s = sin(theta)/lambda = Q/4pi, electrons",
             "ions": {ion: [c, list(a), list(b)] for ion, (c, a, b) in waasmaier_rows_from_xraydb().items()}}
    ions = ",\n".join(f"  {json.dumps(ion)}: {json.dumps(row)}" for ion, row in table["ions"].items())
    path.write_text(f'{{"source": {json.dumps(table["source"])},\n "ions": {{\n{ions}\n}}}}\n')


def _ion_symbol(z: int, charge: float) -> str:
    sym = _symbol(z)
    q = int(round(charge))
    if q == 0:
        return sym
    name = f"{sym}{abs(q) if abs(q) != 1 else ''}{'+' if q > 0 else '-'}"
    alt = f"{sym}{abs(q)}{'+' if q > 0 else '-'}"
    rows = _waasmaier_rows()
    for cand in (name, alt):
        if cand in rows:
            return cand
    return sym  # ion not tabulated: fall back to the neutral atom


def xray_coefficients(z: int, charge: float = 0.0) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """Waasmaier–Kirfel coefficients (c, a[5], b[5]) of f0(s) = c + Σ a_k exp(-b_k s²), s = sinθ/λ = Q/4π."""
    rows = _waasmaier_rows()
    key = _ion_symbol(z, charge)
    if key not in rows:
        raise ScatterfitError(f"no X-ray form factor for element {_symbol(z)} (Z={z})")
    return rows[key]


def length_at_zero(z: int, radiation: str) -> float:
    """An element's forward-scattering length: b_c in fm for ``radiation`` "neutron", otherwise the X-ray f(Q = 0)
    in electrons (c + Σ a_k, what :meth:`FormFactors.at_zero` gives a neutral atom without f′)."""
    if radiation == "neutron":
        return neutron_length(z)
    c, a, _ = xray_coefficients(z)
    return float(c + sum(a))


@lru_cache(maxsize=None)
def neutron_length(z: int, isotope: int | None = None) -> float:
    """Coherent neutron scattering length b_c in fm for element z (natural abundance) or an isotope."""
    import periodictable

    el = periodictable.elements[int(z)]
    if isotope is not None:
        try:
            el = el[int(isotope)]
        except Exception:
            raise ScatterfitError(f"unknown isotope {isotope} of {_symbol(z)}") from None
    b = el.neutron.b_c
    if b is None or (isinstance(b, float) and math.isnan(b)):
        raise ScatterfitError(f"no neutron scattering length tabulated for {_symbol(z)}")
    return float(b)


@lru_cache(maxsize=4096)
def anomalous_terms(z: int, energy_ev: float) -> tuple[float, float]:
    """Chantler f′ and f″ (electrons) of element z at photon energy energy_ev (eV); looked up once per (z, energy),
    since a refinement asks on every step."""
    import xraydb

    sym = _symbol(z)
    return float(xraydb.f1_chantler(sym, energy_ev)), float(xraydb.f2_chantler(sym, energy_ev))


@dataclass(frozen=True)
class ScatteringFactors:
    """Tabulated scattering factors of T scattering types, as torch tensors.

    Attributes:
        radiation: "xray", "neutron" or "unit" (every f = 1: point scatterers, as some simulations assume).
        offset: [T] constant term c (X-ray, electrons), b_c (neutron, fm) or 1 (unit).
        scales: [T, 5] Gaussian amplitudes a_k (zero for neutrons).
        exponents: [T, 5] Gaussian exponents b_k in Å² for s = Q/4π (zero for neutrons).
        f_prime: [T] anomalous real correction f′ (0 unless an energy is given).
        f_second: [T] anomalous imaginary part f″ (0 unless an energy is given).
    """

    radiation: str
    offset: torch.Tensor
    scales: torch.Tensor
    exponents: torch.Tensor
    f_prime: torch.Tensor
    f_second: torch.Tensor

    @classmethod
    def build(cls, numbers, charges=None, radiation: str = "xray", *, energy_ev: float | None = None,
              isotopes=None, dtype=torch.float64, device=None) -> "ScatteringFactors":
        """Tables for the given atomic numbers [T] (and charges [T], isotopes [T] for neutrons)."""
        if radiation not in RADIATIONS:
            raise ScatterfitError(f"unknown radiation '{radiation}' (use one of {', '.join(RADIATIONS)})")
        numbers = [int(z) for z in torch.as_tensor(numbers).tolist()]
        charges = [0.0] * len(numbers) if charges is None else [float(c) for c in torch.as_tensor(charges).tolist()]
        off, sc, ex, fp, fs = [], [], [], [], []
        for k, z in enumerate(numbers):
            if radiation == "xray":
                c, a, b = xray_coefficients(z, charges[k])
                off.append(c), sc.append(a), ex.append(b)
                if energy_ev is not None:
                    p, s = anomalous_terms(z, energy_ev)
                else:
                    p, s = 0.0, 0.0
                fp.append(p), fs.append(s)
            elif radiation == "unit":
                off.append(1.0), sc.append((0.0,) * 5), ex.append((0.0,) * 5)
                fp.append(0.0), fs.append(0.0)
            else:
                iso = None if isotopes is None else isotopes[k]
                off.append(neutron_length(z, iso)), sc.append((0.0,) * 5), ex.append((0.0,) * 5)
                fp.append(0.0), fs.append(0.0)
        t = lambda v: torch.tensor(v, dtype=dtype, device=device)  # noqa: E731
        return cls(radiation, t(off), t(sc), t(ex), t(fp), t(fs))

    def real(self, q: torch.Tensor) -> torch.Tensor:
        """Real part f0(Q) + f′ of each type on the Q grid: [T, nQ] (constant in Q for neutrons)."""
        s2 = (q / (4.0 * math.pi)) ** 2
        gauss = (self.scales[:, :, None] * torch.exp(-self.exponents[:, :, None] * s2[None, None, :])).sum(1)
        return gauss + (self.offset + self.f_prime)[:, None]

    def imag(self) -> torch.Tensor:
        """Imaginary part f″ of each type: [T]."""
        return self.f_second

    def at_zero(self) -> torch.Tensor:
        """Forward-scattering factor f(Q=0) + f′ of each type: [T] (≈ electrons for X-rays, fm for neutrons)."""
        return self.offset + self.scales.sum(1) + self.f_prime


@dataclass(frozen=True)
class ScatteringTypes:
    """Atoms grouped into scattering types (same Z and charge, and optionally the same Biso).

    Attributes:
        index: [N] int64 type of each atom.
        numbers: [T] atomic number of each type.
        charges: [T] formal charge of each type.
        biso: [T] mean Biso of each type's atoms, Å² (differentiable: exact for ADPs shared within a type).
        occupancy: [T] summed occupancy of each type's atoms (differentiable).
    """

    index: torch.Tensor
    numbers: torch.Tensor
    charges: torch.Tensor
    biso: torch.Tensor
    occupancy: torch.Tensor

    def __len__(self) -> int:
        return int(self.numbers.numel())

    def factors(self, radiation: str = "xray", *, energy_ev: float | None = None) -> "ScatteringFactors":
        """The scattering-factor tables of these types."""
        return ScatteringFactors.build(self.numbers, self.charges, radiation, energy_ev=energy_ev,
                                       dtype=self.biso.dtype, device=self.biso.device)


def scattering_types(structure, *, by_biso: bool = False) -> ScatteringTypes:
    """Group the atoms of a Structure by (Z, charge) or, with by_biso, by (Z, charge, Biso)."""
    key = [structure.numbers.to(torch.float64), structure.charges.detach().to(torch.float64)]
    if by_biso:
        key.append(structure.biso.detach().to(torch.float64))
    uniq, inverse = torch.unique(torch.stack(key, 1), dim=0, return_inverse=True)
    n_types = uniq.shape[0]
    zeros = torch.zeros(n_types, dtype=structure.dtype, device=structure.device)
    counts = torch.bincount(inverse, minlength=n_types).to(structure.dtype)
    return ScatteringTypes(index=inverse, numbers=uniq[:, 0].round().to(torch.int64), charges=uniq[:, 1],
                           biso=zeros.index_add(0, inverse, structure.biso) / counts,
                           occupancy=zeros.index_add(0, inverse, structure.occupancy))
