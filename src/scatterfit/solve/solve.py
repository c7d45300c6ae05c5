"""solve(): from measured G(r) data and a composition to ranked structures, without a config.

1. triage the data (solve/triage.py);
2. refine a crystal hypothesis for every library structure type the composition fits (structure/library.py)
   and for every CIF the user gives;
3. from the best two crystals: the mixture of both, and each inside a spherical envelope (a nanoparticle),
   started from the refined crystals; kept only when they improve on them (hypotheses.MIN_GAIN);
4. rank everything by the information criterion (solve/ranking.py).

Every hypothesis is refined by the same machinery as a refine config (Parametrisation, the r-range ramp,
Levenberg–Marquardt), so each one can be written down and replayed as a refine config (report/solution.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from scatterfit.errors import ScatterfitError
from scatterfit.solve.hypotheses import (
    XMAX,
    Hypothesis,
    check_gain,
    crystal_hypothesis,
    mixture_hypothesis,
    nanoparticle_hypothesis,
    refine_hypothesis,
)
from scatterfit.solve.ranking import independent_points, rank, verdict
from scatterfit.solve.triage import Triage, triage

MIXTURE_OF = 2  # the best crystals combined into a mixture and put into particles


@dataclass
class Solution:
    """The outcome of a solve: the triage, every hypothesis ranked (best first; failed ones after, with their
    errors), the verdict on the first two, the data's independent points and the time per class (s)."""

    composition: str
    datasets: dict
    triage: Triage
    ranked: list
    failed: list
    verdict: dict
    points: dict
    seconds: dict = field(default_factory=dict)
    wall_time: float = 0.0


def solve(datasets: dict, composition: str, *, cifs: list | None = None, qmax: float | None = None,
          budget: float | None = None, progress=None) -> Solution:
    """Ranked structures for ``datasets`` ({name: Dataset}, G(r) of one sample) of ``composition`` (a formula,
    "TiO2", or elements, "Ti O").

    Args:
        cifs: structure files of further crystal hypotheses (a folder's CIFs).
        qmax: Qmax of the data's Fourier transform, Å⁻¹, when the headers do not say.
        budget: seconds: no new hypothesis is started after this (those refined so far are ranked).
        progress: called with one line of text after each hypothesis.
    Raises:
        ScatterfitError: no dataset, or a composition no hypothesis fits.
    """
    from scatterfit.structure import read_structure
    from scatterfit.structure.library import candidates

    if not datasets:
        raise ScatterfitError("solve needs at least one dataset")
    t0 = time.perf_counter()
    first = next(iter(datasets.values()))
    found = triage(first)
    hypotheses = [crystal_hypothesis(c.structure(), c.label, c.formula, c.prototype.source)
                  for c in candidates(composition)]
    for path in cifs or []:
        s = read_structure(path)
        hypotheses.append(crystal_hypothesis(s, f"{path.stem} (CIF)", s.formula if hasattr(s, "formula") else
                                             path.stem, str(path)))
    if not hypotheses:
        raise ScatterfitError(f"no library structure type fits the composition '{composition}' (give CIFs with "
                              "--cif)")
    points = {}
    for name, data in datasets.items():
        q = qmax or float(data.metadata.get("qmax", 0)) or 25.0
        points[name] = independent_points(data, max(1.5, float(data.x[0])), min(XMAX, float(data.x[-1])), q)

    def run(h: Hypothesis, k: int, n: int) -> None:
        if budget is not None and time.perf_counter() - t0 > budget:
            h.error = "not refined: the time budget was spent"
            return
        refine_hypothesis(h, datasets, qmax=qmax)
        if progress is not None:
            rw = ", ".join(f"{v:.4f}" for v in h.rw.values()) if not h.error else h.error
            progress(f"{h.kind} {k}/{n} {h.label}: Rw {rw} ({h.seconds:.1f} s)")

    for k, h in enumerate(hypotheses, 1):
        run(h, k, len(hypotheses))
    crystals = [row["hypothesis"] for row in rank(hypotheses, points)][:MIXTURE_OF]
    derived = []
    if len(crystals) == MIXTURE_OF:
        derived.append(mixture_hypothesis(*crystals))
    diameter = min(found.particle_diameter, found.r_range[1])
    derived += [nanoparticle_hypothesis(c, diameter) for c in crystals]
    for k, h in enumerate(derived, 1):
        run(h, k, len(derived))
        check_gain(h)
    everything = hypotheses + derived
    ranked = rank(everything, points)
    seconds = {}
    for h in everything:
        seconds[h.kind] = seconds.get(h.kind, 0.0) + h.seconds
    return Solution(composition, datasets, found, ranked, [h for h in everything if h.error], verdict(ranked),
                    points, seconds, time.perf_counter() - t0)
