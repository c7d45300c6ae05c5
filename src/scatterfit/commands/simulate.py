"""`scatterfit simulate`: structure file → pattern CSV (+ optional PNG).

Atoms without displacement parameters in the file get Uiso = 0.005 Å² unless --uiso or --biso says otherwise;
the value used is printed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from scatterfit.errors import ScatterfitError

if TYPE_CHECKING:
    import torch

    from scatterfit.structure import Structure

UISO_HELP = 0.005  # Å²: structure.UISO_DEFAULT, written out so that the parser does not import torch (tested)

KINDS = {"gr": "G(r), Å⁻²", "sq": "S(Q)", "fq": "F(Q) = Q[S(Q) − 1], Å⁻¹", "iq": "Debye I(Q), e.u.",
         "saxs": "Debye I(Q) at small angles", "xrd": "powder pattern (Bragg) on Q or 2θ"}


def add_arguments(p) -> None:
    p.add_argument("structure", help="any structure file ASE reads (CIF, XYZ, extxyz, POSCAR, PDB)")
    p.add_argument("--kind", choices=list(KINDS), default="gr",
                   help="what to compute: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()))
    rad = p.add_mutually_exclusive_group()
    rad.add_argument("--xray", dest="radiation", action="store_const", const="xray", help="X-ray form factors")
    rad.add_argument("--neutron", dest="radiation", action="store_const", const="neutron",
                     help="neutron scattering lengths")
    p.set_defaults(radiation="xray")
    adp = p.add_mutually_exclusive_group()
    adp.add_argument("--uiso", type=float, default=None,
                     help=f"Uiso of every atom, Å² (default: the file's, else {UISO_HELP})")
    adp.add_argument("--biso", type=float, default=None, help="Biso = 8π² Uiso of every atom, Å²")
    p.add_argument("--qmin", type=float, default=None, help="Å⁻¹ (default 0.5, saxs 0.005)")
    p.add_argument("--qmax", type=float, default=None, help="Å⁻¹ (default 25, saxs 0.5)")
    p.add_argument("--qstep", type=float, default=None, help="Å⁻¹ (default 0.01, saxs 0.001)")
    p.add_argument("--qdamp", type=float, default=0.0, help="Å⁻¹")
    p.add_argument("--qbroad", type=float, default=0.0, help="Å⁻¹")
    p.add_argument("--delta2", type=float, default=0.0, help="Å²")
    p.add_argument("--rmin", type=float, default=0.01, help="Å")
    p.add_argument("--rmax", type=float, default=30.0, help="Å")
    p.add_argument("--rstep", type=float, default=0.01, help="Å")
    p.add_argument("--lorch", action="store_true",
                   help="Lorch window in the Debye → G(r) transform of a finite structure")
    p.add_argument("--wavelength", type=float, default=None, help="Å (xrd on a 2θ grid)")
    p.add_argument("--tth", type=float, nargs=3, metavar=("MIN", "MAX", "STEP"), default=None,
                   help="2θ grid in degrees for --kind xrd (needs --wavelength)")
    p.add_argument("--method", choices=["fast", "exact"], default="fast", help="Debye pair sum")
    p.add_argument("--out", required=True, help="CSV output file")
    p.add_argument("--plot", default=None, help="PNG plot file")


def load_structure(args) -> tuple[Structure, str]:
    """The structure with the displacement parameters the options ask for, and a line saying which were used."""
    from scatterfit.structure.files import read_structure_and_adps

    s, given = read_structure_and_adps(args.structure)
    for name, value in (("--uiso", args.uiso), ("--biso", args.biso)):
        if value is not None and not (np.isfinite(value) and value >= 0):
            raise ScatterfitError(f"{name} must be a finite number ≥ 0, got {value}")
    if args.biso is not None:
        return s.with_uiso(args.biso / (8 * np.pi**2)), f"Biso {args.biso:g} Å² (--biso) for every atom"
    if args.uiso is not None:
        return s.with_uiso(args.uiso), f"Uiso {args.uiso:g} Å² (--uiso) for every atom"
    if given:
        return s, "displacement parameters from the file"
    from scatterfit.structure import UISO_DEFAULT

    return s, f"Uiso {UISO_DEFAULT:g} Å² for every atom (the file gives none; set --uiso or --biso)"


def _grid(lo: float, hi: float, step: float, name: str) -> torch.Tensor:
    import torch

    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(step)):
        raise ScatterfitError(f"{name} range must be finite")
    if step <= 0:
        raise ScatterfitError(f"{name}step must be positive, got {step}")
    if hi <= lo:
        raise ScatterfitError(f"{name}max ({hi}) must be larger than {name}min ({lo})")
    if (hi - lo) / step > 1e6:
        raise ScatterfitError(f"{name} grid would have more than a million points")
    return torch.arange(lo, hi + 0.5 * step, step, dtype=torch.float64)


def compute(args, s: Structure) -> tuple[np.ndarray, np.ndarray, str, str]:
    """The pattern the options ask for, of structure ``s``. Returns x, y, x label, y label."""
    from scatterfit import scattering as sc

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
            if args.lorch:
                raise ScatterfitError("--lorch applies to the Debye → G(r) transform of a finite structure; the G(r) "
                                      "of a periodic structure is computed in real space (its ripples follow --qmax)")
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
            setup = sc.PowderSetup(geometry="cw", wavelength=args.wavelength, radiation=args.radiation)
            y = sc.powder_pattern(s, x, setup)
            return x.numpy(), y.detach().numpy(), "2θ (deg)", "I (a.u.)"
        q = _grid(qmin, qmax, qstep, "q")
        y = sc.powder_pattern(s, q, sc.PowderSetup(geometry="q", radiation=args.radiation))
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


def check(args) -> None:
    """What can be said before torch and ASE are imported: a missing structure file."""
    from pathlib import Path

    if not Path(args.structure).is_file():
        raise ScatterfitError(f"{args.structure}: structure file not found")


def run(args) -> None:
    from scatterfit.report.files import atomic_write, check_output_file

    check_output_file(args.out, what="CSV output file")
    if args.plot:
        check_output_file(args.plot, what="plot file")
    s, adp_note = load_structure(args)
    x, y, xl, yl = compute(args, s)
    header = f"{xl},{yl}"
    try:
        atomic_write(args.out, lambda tmp: np.savetxt(tmp, np.column_stack([x, y]), delimiter=",", header=header,
                                                     comments="# "))
        if args.plot:
            from scatterfit.report.plots import plot_curve

            title = f"{args.structure} ({args.kind}, {args.radiation})"
            atomic_write(args.plot, lambda tmp: plot_curve(x, y, xl, yl, tmp, title=title, fmt="png"))
    except OSError as exc:
        raise ScatterfitError(f"{exc.filename or args.out}: cannot write output ({exc.strerror})") from None
    print(f"wrote {args.out} ({len(x)} points; {adp_note})")
