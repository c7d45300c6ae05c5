"""Triage: cheap features of a measured pattern that decide which classes of structure are worth the budget, as
an expert reads a PDF before fitting it.

For G(r):
- the extent of the signal (the coherence length): the largest r whose 2 Å window still holds a tenth of the
  strongest window's RMS signal. A crystal's PDF runs to the end of the data or fades beyond about 30 Å with
  the instrument's resolution; a nanoparticle's stops near its diameter; a glass's, liquid's or cluster's
  within about 10 Å;
- the first peak (the shortest interatomic distance, Å) and its height;
- the low-r slope below the first peak, −4πρ0 times the data's scale: a number density when the data are on an
  absolute scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scatterfit.errors import ScatterfitError

WINDOW = 2.0  # Å, for the signal envelope
EXTENT_FRACTION = 0.1  # the envelope level that ends the signal
SHORT_RANGE = 12.0  # Å: below this extent, a cluster, glass or liquid rather than a particle
LONG_RANGE = 30.0  # Å: beyond this extent the instrument's resolution, not the particle, ends the signal
SPHERE_EXTENT = 0.8  # a sphere's PDF falls below the extent threshold at about 0.8 of its diameter


@dataclass
class Triage:
    """What the data say before any fit.

    Attributes:
        kind: the dataset kind ("gr", ...).
        r_range: (rmin, rmax) of the data, Å.
        extent: r where the signal ends, Å (≥ rmax − WINDOW: "to the end of the data").
        first_peak: position of the first peak of G(r), Å.
        slope: low-r slope of G(r) below the first peak, Å⁻³ (−4πρ0 × scale), or None.
        classes: the structure classes to try, most likely first.
        reasons: one sentence per conclusion, for the report.
    """

    kind: str
    r_range: tuple
    extent: float
    first_peak: float
    slope: float | None
    classes: list
    reasons: list = field(default_factory=list)

    @property
    def bulk(self) -> bool:
        return self.extent >= self.r_range[1] - WINDOW

    @property
    def particle_diameter(self) -> float:
        """The diameter of spherical particles whose PDF would end at this extent, Å (extent / SPHERE_EXTENT,
        from a sphere's envelope γ0(r) = 1 − 1.5 r/D + 0.5 (r/D)³ at the threshold)."""
        return self.extent / SPHERE_EXTENT

    def as_dict(self) -> dict:
        return {"kind": self.kind, "r_range": list(self.r_range), "extent": self.extent, "first_peak":
                self.first_peak, "slope": self.slope, "classes": list(self.classes), "reasons": list(self.reasons)}


def signal_extent(r: np.ndarray, g: np.ndarray, start: float) -> float:
    """The largest r (Å) whose WINDOW-wide RMS of G(r) is at least EXTENT_FRACTION of the largest one, counting
    windows from ``start`` (past the first peak)."""
    edges = np.arange(start, r[-1] + 1e-9, WINDOW / 2)
    rms = []
    for lo in edges:
        inside = (r >= lo) & (r < lo + WINDOW)
        rms.append(float(np.sqrt(np.mean(g[inside] ** 2))) if inside.sum() >= 3 else 0.0)
    rms = np.array(rms)
    if rms.max() <= 0:
        return float(start)
    alive = np.flatnonzero(rms >= EXTENT_FRACTION * rms.max())
    return float(min(edges[alive[-1]] + WINDOW, r[-1]))


def triage(dataset) -> Triage:
    """The features of one dataset and the classes they point to (see the module docstring).

    Raises:
        ScatterfitError: a dataset kind triage does not read yet, or too few points.
    """
    if dataset.kind != "gr":
        raise ScatterfitError(f"{dataset.path or 'dataset'}: solve reads G(r) data in this version (got kind "
                              f"'{dataset.kind}'); refine other kinds with a config")
    r, g = np.asarray(dataset.x, float), np.asarray(dataset.y, float)
    keep = r > 0.5
    r, g = r[keep], g[keep]
    if len(r) < 50:
        raise ScatterfitError(f"{dataset.path or 'dataset'}: too few points above r = 0.5 Å for triage")
    # the first peak: the first local maximum above a third of the highest point
    high = g.max() / 3
    maxima = np.flatnonzero((g[1:-1] > g[:-2]) & (g[1:-1] >= g[2:]) & (g[1:-1] > high)) + 1
    first = float(r[maxima[0]]) if len(maxima) else float(r[np.argmax(g)])
    below = (r < 0.75 * first) & (r > r[0])
    slope = None
    if below.sum() >= 5:
        slope = float(np.polyfit(r[below], g[below], 1)[0])
    extent = signal_extent(r, g, first + 1.0)
    rmin, rmax = float(r[0]), float(r[-1])
    reasons = [f"the first peak is at {first:.2f} Å (the shortest interatomic distance)"]
    if extent >= min(LONG_RANGE, rmax - WINDOW):
        classes = ["crystal", "mixture", "nanoparticle"]
        end = "to the end of the data" if extent >= rmax - WINDOW else f"to {extent:.0f} Å of {rmax:.0f} Å"
        reasons.append(f"the signal runs {end}: long-range order, a crystal (the decay at long r is the "
                       "instrument's resolution or particles larger than that)")
    elif extent >= SHORT_RANGE:
        classes = ["nanoparticle", "crystal", "mixture"]
        reasons.append(f"the signal ends near {extent:.0f} Å, well inside the data ({rmax:.0f} Å): a finite "
                       f"coherence length, nanoparticles of about {extent / SPHERE_EXTENT:.0f} Å")
    else:
        classes = ["cluster", "amorphous", "nanoparticle"]
        reasons.append(f"the signal ends near {extent:.0f} Å: short-range order only (a cluster, glass or liquid)")
    if slope is not None:
        reasons.append(f"the low-r slope is {slope:.3f} Å⁻³ (−4πρ0 × scale: ρ0 = {-slope / (4 * np.pi):.4f} "
                       "atoms/Å³ if the data are on an absolute scale)")
    return Triage("gr", (rmin, rmax), extent, first, slope, classes, reasons)
