"""Small-angle scattering in solve: what a SAXS/SANS curve says about the particles (Guinier and Porod, as a
small-angle scientist reads it first), and the particle hypotheses it can tell apart: homogeneous spheres,
spheroids (prolate and oblate) and cylinders (rods and discs) with a log-normal size distribution
(scattering/shapes.py), each with a flat background.

The atoms inside do not show at these Q: each hypothesis' structure is the composition's crystal (its element's
reference structure, or the library's first type of its formula), cut to the refined shape at the median size
for the 3D view and the atom count; the report says the atomic arrangement is not determined by the data.
"""

from __future__ import annotations

import math

import numpy as np

from scatterfit.errors import ScatterfitError

SMALL_ANGLE_QMAX = 1.0  # Å⁻¹: an intensity that ends below this is small-angle scattering
GUINIER_QRG = 1.3  # the Guinier approximation holds for Q·Rg below this
GUINIER_DROP = 0.6  # I(Q)/I(start) where the first Guinier estimate stops (Q·Rg ≈ 1.2)
PORCH = 0.25  # the last quarter of the Q range (in log Q) gives the Porod exponent
MAX_CUT_ATOMS = 20000  # the largest particle cut for the 3D view and the structure file
SHAPE_STARTS = (("sphere", "sphere", None), ("prolate spheroid", "spheroid", 3.0),
                ("oblate spheroid", "spheroid", 0.33), ("rod", "cylinder", 4.0), ("disc", "cylinder", 0.2))
"""The shape hypotheses: (label, shape, starting aspect). Prolate and oblate, rods and discs start on their own
side of aspect 1 (the refinement keeps them there: see ASPECT_BOUNDS)."""
ASPECT_BOUNDS = {"prolate spheroid": (1.05, 20.0), "oblate spheroid": (0.05, 0.95), "rod": (1.05, 20.0),
                 "disc": (0.05, 0.95)}
POLYDISPERSITIES = (0.05, 0.15, 0.3)  # the starting polydispersities tried


def is_small_angle(data) -> bool:
    """Whether a dataset is small-angle scattering: kind "saxs", or an intensity I(Q) ending below
    SMALL_ANGLE_QMAX Å⁻¹."""
    if data.kind == "saxs":
        return True
    return data.kind == "iq" and data.x_unit == "inv_angstrom" and float(np.max(data.x)) < SMALL_ANGLE_QMAX


def guinier(q: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """(Rg in Å, I(0), points used) from ln I = ln I(0) − Q²Rg²/3 over the lowest Q with Q·Rg < GUINIER_QRG,
    iterated from the points before I falls below GUINIER_DROP of its start (at least ten: a fine grid's first
    ten can lie within the noise of the plateau).

    Raises:
        ScatterfitError: fewer than 5 positive points at low Q or no Guinier decay (a rising curve)."""
    good = y > 0
    q, y = q[good], y[good]
    if len(q) < 5:
        raise ScatterfitError("too few positive intensities at low Q for a Guinier analysis")
    top = float(np.median(y[:5]))
    below = np.nonzero(y < GUINIER_DROP * top)[0]  # the first estimate: down to where I has fallen visibly
    n = min(max(10, int(below[0]) if len(below) else len(q)), len(q))
    rg = None
    for _ in range(20):
        slope, intercept = np.polyfit(q[:n] ** 2, np.log(y[:n]), 1)
        if slope >= 0:
            raise ScatterfitError("the intensity does not fall at low Q (no Guinier region): aggregated or "
                                  "interacting particles, or a Q range that starts too late")
        rg = math.sqrt(-3 * slope)
        m = max(5, int(np.sum(q * rg < GUINIER_QRG)))
        if m == n:
            break
        n = min(m, len(q))
    return rg, math.exp(intercept), n


def porod_exponent(q: np.ndarray, y: np.ndarray) -> float | None:
    """The power-law exponent of the last PORCH of the Q range (in log Q): −d ln I / d ln Q (4 for smooth
    compact particles, 2 for discs or Gaussian coils, 1 for rods), or None with too few positive points."""
    good = y > 0
    q, y = q[good], y[good]
    if len(q) < 10:
        return None
    lo = math.exp(math.log(q[-1]) - PORCH * (math.log(q[-1]) - math.log(q[0])))
    tail = q >= lo
    if tail.sum() < 5:
        return None
    slope, _ = np.polyfit(np.log(q[tail]), np.log(y[tail]), 1)
    return float(-slope)


def small_angle_triage(data):
    """A Triage (solve/triage.py) of a small-angle curve: Rg and I(0) by Guinier, the Porod exponent, and the
    sphere of that Rg (diameter 2√(5/3) Rg) as the extent; the class is "nanoparticle"."""
    from scatterfit.solve.triage import Triage

    q, y = np.asarray(data.x, float), np.asarray(data.y, float)
    rg, i0, n = guinier(q, y)
    exponent = porod_exponent(q, y)
    diameter = 2 * math.sqrt(5 / 3) * rg
    reasons = [f"small-angle scattering over {q[0]:.4f}–{q[-1]:.3f} Å⁻¹: particles seen as homogeneous bodies, "
               "their shape and size distribution (not their atoms)",
               f"Guinier: Rg = {rg:.1f} Å from the first {n} points (Q·Rg < {GUINIER_QRG}); a sphere of that Rg is "
               f"{diameter:.0f} Å across"]
    if exponent is not None:
        shape = ("smooth compact particles" if exponent > 3.3 else "rough or fractal surfaces" if exponent > 2.5
                 else "flat (disc-like) particles or coils" if exponent > 1.5 else "elongated (rod-like) particles")
        reasons.append(f"Porod: I ∝ Q^-{exponent:.1f} at high Q: {shape} (polydispersity blurs this)")
    return Triage("saxs", (float(q[0]), float(q[-1])), diameter, 0.0, None, ["nanoparticle"], reasons=reasons,
                  features={"rg": rg, "i0": i0, "guinier_points": n, "porod_exponent": exponent})


def relative_weights(data):
    """``data`` with σ = |I| where it has none (a relative error of 1 on every point: the fit weighs each decade
    of the curve alike, as SAXS programs' "|I| weighting" does), marked in metadata "weights"; unchanged when it
    has σ."""
    if data.sigma is not None:
        return data
    y = np.asarray(data.y, float)
    floor = 1e-6 * float(np.max(np.abs(y)))
    return data.with_(sigma=np.maximum(np.abs(y), floor), metadata={**data.metadata, "weights": "relative"})


def host_crystal(composition: str):
    """(Structure, label) of the crystal the particles are cut from: an element's reference structure, or the
    library's first type of the formula.

    Raises:
        ScatterfitError: no library type fits the composition."""
    from scatterfit.structure.library import candidates

    options = candidates(composition)
    if not options:
        raise ScatterfitError(f"no library structure type fits the composition '{composition}'")
    return options[0].structure(), options[0].label


def shape_hypotheses(composition: str, found, datasets: dict) -> list:
    """The SHAPE_STARTS hypotheses ("nanoparticle", model "shape"), each sized so that its Rg is the triage's
    Guinier Rg, the aspect of spheroids and cylinders (the best of SCAN on its side of 1) and the polydispersity
    (of POLYDISPERSITIES) those of the best start (:func:`start_misfit`), with the radius, polydispersity, aspect
    and a constant background refined."""
    from scatterfit.solve.hypotheses import Hypothesis, phase_name

    crystal, label = host_crystal(composition)
    rg = found.features["rg"]
    out = []
    for name, shape, aspect in SHAPE_STARTS:
        aspects = [None] if aspect is None else (np.geomspace(1.2, 15.0, SCAN) if aspect > 1
                                                 else np.geomspace(0.07, 0.8, SCAN))
        # the best start on its side of 1 and of the polydispersities (a rod's curve changes much with both)
        aspect, sigma = min(((None if a is None else float(a), sig) for a in aspects for sig in POLYDISPERSITIES),
                            key=lambda start: start_misfit(shape, start[0], start[1], rg, datasets))
        radius = _start_radius(shape, aspect, sigma, rg)
        values = {"radius": radius, "polydispersity": sigma, "background_order": 0}
        free = ["radius", "polydispersity", "background"]
        bounds = {}
        if aspect is not None:
            values["aspect"] = aspect
            free.insert(1, "aspect")
            bounds["aspect"] = ASPECT_BOUNDS[name]
        out.append(Hypothesis("nanoparticle", f"{name} of {label}", label.split()[-1], {phase_name(label): crystal},
                              free, values, f"homogeneous {name} (analytic form factor, log-normal sizes); atoms: "
                              f"{label} (not determined by small-angle data)", model="shape", bounds=bounds,
                              options={"shape": shape}))
    return out


SCAN = 10  # starting aspects tried on each side of 1


def _start_radius(shape: str, aspect: float | None, sigma: float, rg: float) -> float:
    """The median radius, Å, at which a particle of this shape and polydispersity ``sigma`` has the Guinier Rg
    (the V²-weighted sizes are e^{6σ²} larger than the median)."""
    from scatterfit.scattering.shapes import guinier_radius

    return rg / guinier_radius(shape, 1.0, aspect or 1.0) * math.exp(-6 * sigma**2)


def start_misfit(shape: str, aspect: float | None, sigma: float, rg: float, datasets: dict) -> float:
    """The mean weighted Rw of a starting particle (sized by :func:`_start_radius`) with its best scale and flat
    background (linear least squares), over ``datasets``."""
    import torch

    from scatterfit.scattering.shapes import polydisperse_intensity

    radius = _start_radius(shape, aspect, sigma, rg)
    out = []
    for data in datasets.values():
        q = torch.as_tensor(np.asarray(data.x, float))
        m = polydisperse_intensity(shape, q, radius, aspect or 1.0, sigma).numpy()
        y = np.asarray(data.y, float)
        w = 1 / np.asarray(data.sigma, float) if data.sigma is not None else np.ones_like(y)
        design = np.column_stack([m, np.ones_like(m)]) * w[:, None]
        coef, *_ = np.linalg.lstsq(design, y * w, rcond=None)
        out.append(float(np.sqrt(np.sum((design @ coef - y * w) ** 2) / np.sum((y * w) ** 2))))
    return sum(out) / len(out)


def particle_atoms(crystal, shape: str, radius: float, aspect: float = 1.0):
    """The atoms of ``crystal`` inside the shape (sphere of ``radius`` Å; spheroid with semi-axes radius, radius,
    aspect·radius along z; cylinder of that radius and length 2·aspect·radius along z), or None when it would
    hold more than MAX_CUT_ATOMS atoms."""
    from scatterfit.scattering.shapes import volume
    from scatterfit.structure.particles import cut_particle

    density = len(crystal) / float(crystal.volume)
    if density * volume(shape, radius, aspect) > MAX_CUT_ATOMS:
        return None
    reach = radius * max(1.0, aspect) * (math.sqrt(2) if shape == "cylinder" else 1.0)
    ball = cut_particle(crystal, 2 * reach + 1e-6)
    xyz = ball.positions.detach().cpu().numpy()
    xyz = xyz - xyz.mean(0)
    if shape == "sphere":
        inside = (xyz**2).sum(1) <= radius**2
    elif shape == "spheroid":
        inside = (xyz[:, 0] ** 2 + xyz[:, 1] ** 2) / radius**2 + xyz[:, 2] ** 2 / (aspect * radius) ** 2 <= 1
    else:
        inside = (xyz[:, 0] ** 2 + xyz[:, 1] ** 2 <= radius**2) & (np.abs(xyz[:, 2]) <= aspect * radius)
    if not inside.any():
        return None
    return ball.select(np.nonzero(inside)[0])
