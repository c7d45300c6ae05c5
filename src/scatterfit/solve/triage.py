"""Triage: cheap features of a measured pattern that decide which classes of structure are worth the budget, as
an expert reads a PDF before fitting it.

For G(r):
- the extent of the signal (the coherence length): the largest r whose 2 Å window still holds a tenth of the
  strongest window's RMS signal. A crystal's PDF runs to the end of the data or fades beyond about 30 Å with
  the instrument's resolution; a nanoparticle's stops near its diameter; a glass's, liquid's or cluster's
  within about 10 Å;
- the first peak (the shortest interatomic distance, Å) and its height;
- the low-r slope below the first peak, −4πρ0 times the data's scale: a number density when the data are on an
  absolute scale. Data transformed from Q = qmin (metadata) lack the part of F(Q) = Q[S(Q) − 1] below it, which
  for condensed matter (S ≈ 0 there) is −Q and adds (2/π) qmin³ r / 3 to G(r) at low r: it is taken off the slope;
- the sharpness of the peaks beyond the first shells (:func:`sharpness`): a crystal's, a particle's or a rigid
  cluster's pair distances stay sharp, so its G(r) there holds much power at wavelengths shorter than half the
  first distance; a glass's or liquid's is a damped, nearly sinusoidal wave at the main peak of S(Q) (about
  7/d1 Å⁻¹). Measured: liquid Ar 0.007, silica glass 0.08, amorphous Si (a simulated network) 0.07 against the
  α-Keggin cluster 0.41, a 147-atom Ni icosahedron (simulated) 0.76, Pt particles 0.79, Ni 0.81.
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
SHARP = 0.2  # sharpness below this: disordered (a glass or liquid), above: ordered (crystal, particle, cluster)
SHORT_WAVE = 12.0  # Q·d1 above which a wave counts as short (half the first distance)
BEYOND = 2.2  # × d1: where the sharpness is measured from (past a tetrahedral network's second shell, 1.63 d1)


@dataclass
class Triage:
    """What the data say before any fit.

    Attributes:
        kind: the dataset kind ("gr", ...).
        r_range: (rmin, rmax) of the data, Å.
        extent: r where the signal ends, Å (≥ rmax − WINDOW: "to the end of the data").
        first_peak: position of the first peak of G(r), Å.
        slope: low-r slope of G(r) below the first peak, Å⁻³ (−4πρ0 × scale), or None.
        sharpness: the fraction of the mid-r signal's power in short waves (:func:`sharpness`), 0–1.
        classes: the structure classes to try, most likely first.
        reasons: one sentence per conclusion, for the report.
        features: further numbers read off the data (a small-angle curve's Guinier Rg, I(0), Porod exponent).
    """

    kind: str
    r_range: tuple
    extent: float
    first_peak: float
    slope: float | None
    classes: list
    sharpness: float = 1.0
    reasons: list = field(default_factory=list)
    features: dict = field(default_factory=dict)

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
                self.first_peak, "slope": self.slope, "sharpness": self.sharpness, "classes": list(self.classes),
                "reasons": list(self.reasons), "features": dict(self.features)}

    @property
    def density(self) -> float | None:
        """ρ0 = −slope/4π, atoms/Å³ (meaningful only for data on an absolute scale), or None."""
        return None if self.slope is None or self.slope >= 0 else -self.slope / (4 * np.pi)


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


def sharpness(r: np.ndarray, g: np.ndarray, first: float, extent: float) -> float:
    """The fraction of G(r)'s power beyond the first shells (from BEYOND × d1 to the extent, at most 10 Å of it) in
    waves shorter than half the first distance d1 (Q d1 > SHORT_WAVE), among waves of Q d1 > 4 and Q < 20 Å⁻¹
    (above it, noise): the slow baseline (a Gaussian of width d1/2 removed) and the ends (a Hann window) left
    out. 1.0 when the signal ends less than 2 Å beyond BEYOND × d1 (a small cluster: nothing to tell).

    Args:
        r, g: [n] the data, Å and Å⁻² (an even r step); first: d1, Å; extent: where the signal ends, Å.
    """
    from scipy.ndimage import gaussian_filter1d

    step = float(np.median(np.diff(r)))
    lo = BEYOND * first
    hi = min(extent, lo + 10.0, float(r[-1]))
    inside = (r >= lo) & (r <= hi)
    if hi - lo < 2.0 or inside.sum() < 32:  # the signal ends within the first shells: a small cluster
        return 1.0
    wave = (g - gaussian_filter1d(g, first / 2 / step))[inside] * np.hanning(int(inside.sum()))
    power = np.abs(np.fft.rfft(wave, 8192)) ** 2
    q = 2 * np.pi * np.fft.rfftfreq(8192, step)
    band = (q < 20.0) & (q * first > 4.0)
    total = power[band].sum()
    return float(power[band & (q * first > SHORT_WAVE)].sum() / total) if total > 0 else 1.0


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
        qmin = float(dataset.metadata.get("qmin", 0.0) or 0.0)
        slope -= 2 * qmin**3 / (3 * np.pi)  # the unmeasured Q < qmin, where S(Q) ≈ 0 (condensed matter)
    extent = signal_extent(r, g, first + 1.0)
    sharp = sharpness(r, g, first, extent)
    rmin, rmax = float(r[0]), float(r[-1])
    reasons = [f"the first peak is at {first:.2f} Å (the shortest interatomic distance)"]
    if sharp < SHARP:
        classes = ["amorphous", "nanoparticle", "cluster"]
        reasons.append(f"beyond the first shells G(r) is a smooth damped wave (only {100 * sharp:.0f} % of its "
                       f"power in waves shorter than {first / 2:.2f} Å; ordered matter keeps more than "
                       f"{100 * SHARP:.0f} %) that fades by {extent:.0f} Å: a glass or liquid")
    elif extent >= min(LONG_RANGE, rmax - WINDOW):
        classes = ["crystal", "mixture", "nanoparticle"]
        end = "to the end of the data" if extent >= rmax - WINDOW else f"to {extent:.0f} Å of {rmax:.0f} Å"
        reasons.append(f"the signal runs {end}: long-range order, a crystal (the decay at long r is the "
                       "instrument's resolution or particles larger than that)")
    elif extent >= SHORT_RANGE:
        classes = ["nanoparticle", "crystal", "mixture"]
        reasons.append(f"the signal ends near {extent:.0f} Å, well inside the data ({rmax:.0f} Å): a finite "
                       f"coherence length, nanoparticles of about {extent / SPHERE_EXTENT:.0f} Å")
    else:  # sharp peaks that end early: a glass's or liquid's would be smooth (the first branch)
        classes = ["cluster", "nanoparticle", "amorphous"]
        reasons.append(f"the signal ends near {extent:.0f} Å with sharp peaks: a cluster or molecule of about that "
                       "size (a glass's or liquid's peaks would be smooth)")
    if slope is not None:
        reasons.append(f"the low-r slope is {slope:.3f} Å⁻³ (−4πρ0 × scale: ρ0 = {-slope / (4 * np.pi):.4f} "
                       "atoms/Å³ if the data are on an absolute scale)")
    if sharp >= SHARP:
        reasons.append(f"its peaks stay sharp beyond the first shells ({100 * sharp:.0f} % of the power in waves "
                       f"shorter than {first / 2:.2f} Å): ordered")
    return Triage("gr", (rmin, rmax), extent, first, slope, classes, sharpness=sharp, reasons=reasons)


SCHERRER_K = 0.9  # the shape factor of Scherrer's equation (spherical crystallites, FWHM)
PEAK_PROMINENCE = 8.0  # × the noise: a Bragg peak
BROAD = 0.35  # Å⁻¹: peaks wider than this in Q are no Bragg peaks (about 2 nm crystallites)
NANO = 100.0  # Å: Scherrer sizes below this call the sample nanocrystalline


def powder_triage(dataset) -> Triage:
    """What a Bragg powder pattern (2θ or Q) says before any fit: whether it has Bragg peaks (found above a smooth
    background, at least PEAK_PROMINENCE × the noise high), the largest d-spacing among them (``first_peak``,
    Å) and the crystallite size of Scherrer's equation L = 2π K / ΔQ from the median FWHM of the strongest five
    (``extent``, Å; the instrument's width is not removed, so it is a lower bound). No peaks, or only peaks
    broader than BROAD: classes ["amorphous"] (a glass, liquid or crystallites of 2 nm or less, which a Bragg
    fit cannot describe)."""
    from scipy.signal import find_peaks

    from scatterfit.solve.screen import powder_grid

    grid = powder_grid(dataset)
    x, y = grid.x, grid.y
    step = float(x[1] - x[0])
    noise = 1.4826 * float(np.median(np.abs(np.diff(y)))) / np.sqrt(2) or float(np.std(y)) or 1.0
    found, props = find_peaks(y, prominence=PEAK_PROMINENCE * noise, width=1)
    q = grid.q
    dq = np.gradient(q) / step  # dQ/dx
    widths = props["widths"] * step * dq[found] if len(found) else np.zeros(0)
    rmin, rmax = float(dataset.x[0]), float(dataset.x[-1])
    unit = "Å⁻¹" if grid.setup.geometry == "q" else "° 2θ"
    sharp = widths < BROAD
    if not sharp.any():
        reason = (f"no Bragg peaks above the background (none {PEAK_PROMINENCE:g} × the noise high)" if not len(found)
                  else f"only broad humps ({len(found)}, FWHM ≥ {BROAD} Å⁻¹): no Bragg peaks")
        return Triage("xrd", (rmin, rmax), 0.0, 0.0, None, ["amorphous"], sharpness=0.0,
                      reasons=[f"{reason}: a glass, liquid or crystallites of 2 nm or less"])
    found, widths, prominence = found[sharp], widths[sharp], props["prominences"][sharp]
    strongest = np.argsort(prominence)[::-1][:5]
    size = float(2 * np.pi * SCHERRER_K / np.median(widths[strongest]))
    d_max = float(2 * np.pi / q[found].min())
    reasons = [f"{len(found)} Bragg peaks between {rmin:g} and {rmax:g} {unit}; the largest d-spacing is "
               f"{d_max:.3f} Å",
               f"Scherrer: crystallites of at least {size / 10:.0f} nm (median FWHM of the strongest five peaks, "
               "the instrument's width not removed)"]
    if size < NANO:
        reasons.append("the peaks are broad: nanocrystalline (a PDF of the same sample would show its structure "
                       "and size better)")
    return Triage("xrd", (rmin, rmax), size, d_max, None, ["crystal", "mixture"], sharpness=1.0, reasons=reasons)


def intensity_triage(dataset, counts: dict) -> Triage:
    """What an intensity I(Q) (kind "iq", arbitrary units) of a molecule's or cluster's formula ``counts`` says
    before any fit: it is scattering from finite objects, so the class is a cluster; the shortest distance is not
    read from the data (no transform without the normalisation) but expected from the formula
    (solve/ionic.expected_bond)."""
    from scatterfit.solve.clusters import cluster_diameter
    from scatterfit.solve.ionic import expected_bond

    q = np.asarray(dataset.x, float)
    bond = expected_bond(counts)
    n = sum(counts.values())
    reasons = [f"an intensity I(Q) over {q[0]:.2f}–{q[-1]:.2f} Å⁻¹: scattering of finite objects (a molecule or "
               f"cluster of {n} atoms, about {cluster_diameter(n):.0f} Å across at condensed density)",
               f"the shortest bond is expected near {bond:.2f} Å (from the formula, not the data)"]
    return Triage("iq", (float(q[0]), float(q[-1])), cluster_diameter(n), bond, None, ["cluster"], reasons=reasons)


def first_shell_area(dataset, first_peak: float, density: float) -> float:
    """∫ R(r) dr over the first peak of a G(r) on an absolute scale, R(r) = r G(r) + 4πρ0 r² (``density`` ρ0 in
    atoms/Å³): the scattering-weighted number of neighbours in the first shell, Σ_αβ c_α b_α b_β N_αβ / ⟨b⟩²
    over the pairs there. The peak runs from where R(r) rises above 2 % of its height on the left to its first
    minimum on the right of ``first_peak`` (Å)."""
    r, g = np.asarray(dataset.x, float), np.asarray(dataset.y, float)
    radial = r * g + 4 * np.pi * density * r**2
    top = int(np.argmin(np.abs(r - first_peak)))
    right = top
    while right + 1 < len(r) and (radial[right + 1] <= radial[right] or r[right] < first_peak + 0.1):
        right += 1
    left = top
    while left > 0 and radial[left - 1] < radial[left] and radial[left] > 0.02 * radial[top]:
        left -= 1
    return float(np.trapezoid(radial[left:right + 1], r[left:right + 1]))


FINITE = ("nanoparticle", "cluster")
"""The classes of a sample in solution: a dissolved molecule or cluster, or a colloid's particles."""


def in_solution(found: Triage) -> Triage:
    """``found`` for a sample the user says is in solution (its solvent's scattering subtracted): only finite
    objects are tried — clusters and particles, in the order the data suggest (a crystal-like signal: particles
    first) — never a bulk crystal, a mixture of crystals or a glass's periodic box."""
    import dataclasses

    order = [c for c in found.classes if c in FINITE]
    order += [c for c in FINITE if c not in order]
    reason = (f"in solution (given): only finite objects are tried, {' and '.join(order)}s; the triage's "
              f"'{found.classes[0]}' is not one" if found.classes[0] not in FINITE else
              f"in solution (given): only finite objects are tried, {' and '.join(order)}s")
    return dataclasses.replace(found, classes=order, reasons=[*found.reasons, reason])


def melting_point(composition: str) -> tuple[str, float] | None:
    """(element, its melting point in K at ambient pressure, pymatgen's table) of a one-element composition; None
    for compounds (whose melting points no table here gives: NaCl melts at 1074 K, above both its elements) or an
    element without a known melting point."""
    from scatterfit.structure.library import parse_composition

    elements = list(parse_composition(composition))
    if len(elements) != 1:
        return None
    from pymatgen.core import Element

    value = Element(elements[0]).melting_point
    return None if value is None else (elements[0], float(value))


def at_temperature(found: Triage, composition: str, temperature: float) -> Triage:
    """``found`` for a sample measured at ``temperature`` K (given): an element above its melting point is a liquid,
    so a liquid's box is tried first (and added where the triage left it out: the ranking, not the hint, decides
    between it and the others); below it, or for a compound, the classes stay as the data suggest and the reason
    says so."""
    import dataclasses

    melting = melting_point(composition)
    if melting is None:
        return dataclasses.replace(found, reasons=[*found.reasons, (
            f"temperature {temperature:g} K (given): no melting point is known for '{composition}' (tables give "
            "elements only), so it changes only the bound on the ADPs")])
    element, tm = melting
    if temperature <= tm:
        return dataclasses.replace(found, reasons=[*found.reasons, (
            f"temperature {temperature:g} K (given) is below {element}'s melting point ({tm:g} K): a crystal, a glass "
            "or a supercooled liquid, as the data say")])
    order = ["amorphous", *[c for c in found.classes if c != "amorphous"]]
    reason = (f"temperature {temperature:g} K (given) is above {element}'s melting point ({tm:g} K): a liquid, "
              "tried first")
    if found.classes[0] == "crystal":
        reason += "; but the data look crystalline (is the temperature in kelvin?)"
    return dataclasses.replace(found, classes=order, reasons=[*found.reasons, reason])
