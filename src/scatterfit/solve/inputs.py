"""What solve reads: G(r) as it is, and total-scattering S(Q) or F(Q) turned into G(r) as a PDF program does
(F(Q) = Q[S(Q) − 1], sine-transformed over the measured Q range without a window, so the model's Qmax
termination describes the result), with Qmax the data's last Q. An interference function (metadata "form":
"interference", as Gudrun's .mint01 files hold: Σ c_i c_j b_i b_j [S(Q) − 1] in barns/sr/atom) is first divided
by ⟨b⟩² of the composition (neutrons), so that its G(r) is on an absolute scale and its low-r slope gives the
number density. The measured curve itself is kept, as S(Q) − 1 on the G(r)'s scale (metadata "reciprocal"): a
box (an amorphous or liquid model) is fitted to it beside the G(r), as reverse Monte Carlo fits the measured
S(Q) or F(Q) (solve/hypotheses.hypothesis_loss). Other kinds reaching as_pdf are refused with one line (Bragg
powder patterns, intensities I(Q) and small-angle curves have their own paths in solve/solve.py).
"""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError

R_STEP = 0.01  # Å
R_MIN, R_MAX = 0.5, 30.0  # Å: the G(r) derived from S(Q) or F(Q)


def mean_length_squared(composition: str) -> float:
    """⟨b⟩² = (Σ c_i b_i)² of a composition, barns (neutron coherent lengths; 1 barn = 100 fm²)."""
    from ase.data import atomic_numbers

    from scatterfit.scattering.formfactors import neutron_length
    from scatterfit.structure.library import parse_composition

    counts = parse_composition(composition)
    total = sum(counts.values())
    mean = sum(n * neutron_length(atomic_numbers[e]) for e, n in counts.items()) / total
    return mean**2 / 100.0


def as_pdf(dataset, composition: str | None = None):
    """``dataset`` as a G(r) Dataset ("gr", r in Å; metadata qmax, qmin (the data's Q range, Å⁻¹), "absolute"
    (the G(r) is on an absolute scale: from S(Q), or from a neutron interference function normalised by the
    ``composition``'s ⟨b⟩²), "derived_from": the original kind, and "reciprocal": {"q": [nQ] Å⁻¹, "s_minus_1":
    [nQ]} the measured curve as S(Q) − 1 on the same scale as the G(r)).

    Raises:
        ScatterfitError: a kind solve does not read, too short a Q range, or an interference function of X-rays
            or without a composition.
    """
    from scatterfit.analysis.derived_gr import reduced_fq
    from scatterfit.scattering.transforms import pdf_from_fq

    if dataset.kind == "gr":
        return dataset
    if dataset.kind not in ("sq", "fq"):
        raise ScatterfitError(f"{dataset.path or 'dataset'}: solve reads G(r), S(Q) and F(Q) in this version (got "
                              f"kind '{dataset.kind}'); refine other kinds with a config")
    q, y = np.asarray(dataset.x, float), np.asarray(dataset.y, float)
    keep = np.isfinite(y) & (q > 0)
    q, y = q[keep], y[keep]
    if len(q) < 50 or q[-1] < 8.0:
        raise ScatterfitError(f"{dataset.path or 'dataset'}: too short a Q range for a PDF (up to {q[-1]:.1f} Å⁻¹; "
                              "solve needs at least 8 Å⁻¹)")
    form = dataset.kind
    absolute = form == "sq"
    if dataset.metadata.get("form") == "interference":
        if dataset.radiation != "neutron" or not composition:
            raise ScatterfitError(f"{dataset.path or 'dataset'}: an interference function needs neutron data and "
                                  "a composition to be put on an absolute scale")
        y, form, absolute = y / mean_length_squared(composition), "interference", True
    f = reduced_fq(q, y, form)
    r = np.arange(R_MIN, R_MAX + 1e-9, R_STEP)
    g = pdf_from_fq(torch.as_tensor(f), torch.as_tensor(q), torch.as_tensor(r), lorch=False).numpy()
    metadata = {**dataset.metadata, "qmax": float(q[-1]), "qmin": float(q[0]), "derived_from": dataset.kind,
                "absolute": absolute, "reciprocal": {"q": q, "s_minus_1": f / q}}
    return dataset.with_(x=r, y=g, sigma=None, kind="gr", x_unit="angstrom", metadata=metadata)


DENSITY_UNITS = {"g/cm3": "mass", "g/cc": "mass", "g/ml": "mass", "atoms/a3": "number", "/a3": "number"}
"""The units a density hint may be written in (case and spaces ignored, Å for A, ³ for 3); a bare number is
g/cm³, what a balance and a pycnometer give."""


def number_density(text: str | float, composition: str) -> float:
    """A density hint as a number density, atoms/Å³: ``text`` such as "2.20 g/cm3", "2.2" (g/cm³) or
    "0.0664 atoms/A3", converted with the ``composition``'s mean atomic mass (ρ_n = ρ N_A / ⟨m⟩, 1 g/cm³ =
    0.6022 u/Å³).

    Raises:
        ScatterfitError: not a positive number, a unit not in DENSITY_UNITS, or a composition without elements.
    """
    import re

    from ase.data import atomic_masses, atomic_numbers

    from scatterfit.structure.library import parse_composition

    raw = str(text).strip()
    match = re.fullmatch(r"([-+0-9.eE]+)\s*(.*)", raw)
    unit = "" if match is None else match.group(2).lower().replace(" ", "").replace("å", "a").replace("³", "3")
    try:
        value = float(match.group(1)) if match else float("nan")
    except ValueError:
        value = float("nan")
    if not (value > 0 and np.isfinite(value)):
        raise ScatterfitError(f"density '{raw}': not a positive number (write e.g. '2.20 g/cm3' or '0.0664 atoms/A3')")
    kind = "mass" if unit == "" else DENSITY_UNITS.get(unit)
    if kind is None:
        raise ScatterfitError(f"density '{raw}': unknown unit '{match.group(2)}' (use g/cm3 or atoms/A3)")
    if kind == "number":
        return value
    counts = parse_composition(composition)
    mass = sum(n * float(atomic_masses[atomic_numbers[e]]) for e, n in counts.items()) / sum(counts.values())
    return value * 0.602214076 / mass  # g/cm³ × (N_A × 1e-24 cm³/Å³) / (g/mol per atom)


TEMPERATURE_RANGE = (0.0, 10000.0)  # K: a sample's temperature the hint accepts


def checked_temperature(temperature) -> float:
    """The temperature hint (K) as a float.

    Raises:
        ScatterfitError: not a number in TEMPERATURE_RANGE K (a Celsius value below zero, a typo)."""
    low, high = TEMPERATURE_RANGE
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not low < temperature < high:
        raise ScatterfitError(f"temperature: a number of kelvin between {low:g} and {high:g}, got {temperature!r}")
    return float(temperature)


def checked_qmin(qmin, qmax: float | None) -> float:
    """The Qmin hint (Å⁻¹) as a float, against the data's ``qmax`` (Å⁻¹; None or 0: unknown).

    Raises:
        ScatterfitError: not a number from 0 to below Qmax."""
    import math

    if isinstance(qmin, bool) or not (isinstance(qmin, (int, float)) and math.isfinite(qmin) and 0 <= qmin
                                      and (not qmax or qmin < qmax)):
        raise ScatterfitError(f"qmin must be a number from 0 to below Qmax ({qmax or 0:g} Å⁻¹), got {qmin!r}")
    return float(qmin)
