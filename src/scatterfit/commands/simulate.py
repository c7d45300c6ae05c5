"""`scatterfit simulate`: structure file → pattern CSV (+ optional PNG)."""

from __future__ import annotations

import numpy as np
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure import Structure


def _grid(lo: float, hi: float, step: float, name: str) -> torch.Tensor:
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(step)):
        raise ScatterfitError(f"{name} range must be finite")
    if step <= 0:
        raise ScatterfitError(f"{name}step must be positive, got {step}")
    if hi <= lo:
        raise ScatterfitError(f"{name}max ({hi}) must be larger than {name}min ({lo})")
    if (hi - lo) / step > 1e6:
        raise ScatterfitError(f"{name} grid would have more than a million points")
    return torch.arange(lo, hi + 0.5 * step, step, dtype=torch.float64)


def compute(args) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Returns x, y, x label, y label."""
    from scatterfit import scattering as sc

    s = Structure.from_file(args.structure)
    saxs = args.kind == "saxs"
    qmin = args.qmin if args.qmin is not None else (0.005 if saxs else 0.5)
    qmax = args.qmax if args.qmax is not None else (0.5 if saxs else 25.0)
    qstep = args.qstep if args.qstep is not None else (0.001 if saxs else 0.01)
    if qmax <= 0:
        raise ScatterfitError(f"qmax must be positive, got {qmax}")
    if args.kind == "gr":
        r = _grid(args.rmin, args.rmax, args.rstep, "r")
        if r[0] <= 0:
            raise ScatterfitError(f"rmin must be positive, got {args.rmin}")
        if s.periodic:
            g = sc.pdf(s, r, qmax=qmax, qdamp=args.qdamp, qbroad=args.qbroad, delta2=args.delta2,
                       radiation=args.radiation)
        else:
            q = _grid(qmin, qmax, min(qstep, 0.05), "q")
            i = sc.debye_intensity(s, q, radiation=args.radiation, method=args.method)
            f = sc.reduced_structure_factor(sc.structure_factor(i, s, q, radiation=args.radiation), q)
            g = sc.pdf_from_fq(f, q, r, lorch=args.lorch, qdamp=args.qdamp)
        return r.numpy(), g.detach().numpy(), "r (Å)", "G(r) (Å⁻²)"
    if args.kind == "xrd":
        if args.tth is not None:
            x = _grid(args.tth[0], args.tth[1], args.tth[2], "2θ")
            y = sc.powder_pattern(s, x, wavelength=args.wavelength, axis="tth", radiation=args.radiation)
            return x.numpy(), y.detach().numpy(), "2θ (deg)", "I (a.u.)"
        q = _grid(qmin, qmax, qstep, "q")
        y = sc.powder_pattern(s, q, axis="q", radiation=args.radiation)
        return q.numpy(), y.detach().numpy(), "Q (Å⁻¹)", "I (a.u.)"
    q = _grid(qmin, qmax, qstep, "q")
    if s.periodic and args.kind in ("sq", "fq"):
        r = _grid(0.01, args.rmax, 0.01, "r")
        g = sc.pdf(s, r, qdamp=args.qdamp, radiation=args.radiation)
        f = sc.fq_from_pdf(g, r, q, window=True)
        y = f if args.kind == "fq" else 1 + f / q
        return q.numpy(), y.detach().numpy(), "Q (Å⁻¹)", "F(Q) (Å⁻¹)" if args.kind == "fq" else "S(Q)"
    if s.periodic and args.kind in ("iq", "saxs"):
        raise ScatterfitError(f"--kind {args.kind} uses the Debye equation of a finite particle; this structure is "
                              "periodic (use --kind gr/sq/fq/xrd, or a finite cluster)")
    i = sc.debye_intensity(s, q, radiation=args.radiation, method=args.method)
    if args.kind in ("iq", "saxs"):
        return q.numpy(), i.detach().numpy(), "Q (Å⁻¹)", "I(Q) (e.u.)"
    sq = sc.structure_factor(i, s, q, radiation=args.radiation)
    if args.kind == "sq":
        return q.numpy(), sq.detach().numpy(), "Q (Å⁻¹)", "S(Q)"
    return q.numpy(), sc.reduced_structure_factor(sq, q).detach().numpy(), "Q (Å⁻¹)", "F(Q) (Å⁻¹)"


def run_simulate(args) -> None:
    x, y, xl, yl = compute(args)
    header = f"{xl},{yl}"
    try:
        np.savetxt(args.out, np.column_stack([x, y]), delimiter=",", header=header, comments="# ")
    except OSError as exc:
        raise ScatterfitError(f"{args.out}: cannot write output ({exc.strerror})") from None
    if args.plot:
        from scatterfit.report.plots import plot_curve

        plot_curve(x, y, xl, yl, args.plot, title=f"{args.structure} ({args.kind}, {args.radiation})")
    print(f"wrote {args.out} ({len(x)} points)")
