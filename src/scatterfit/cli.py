"""Command line: `scatterfit simulate|refine|demo`. Parses arguments, builds API objects, calls them; every
ScatterfitError (bad input) becomes one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="compute a pattern from a structure file")
    p.add_argument("structure", help="any structure file ASE reads (CIF, XYZ, extxyz, POSCAR, PDB)")
    p.add_argument("--kind", choices=["iq", "sq", "fq", "gr", "saxs", "xrd"], default="gr")
    rad = p.add_mutually_exclusive_group()
    rad.add_argument("--xray", dest="radiation", action="store_const", const="xray")
    rad.add_argument("--neutron", dest="radiation", action="store_const", const="neutron")
    p.set_defaults(radiation="xray")
    p.add_argument("--qmin", type=float, default=None, help="Å⁻¹ (default 0.5, saxs 0.005)")
    p.add_argument("--qmax", type=float, default=None, help="Å⁻¹ (default 25, saxs 0.5)")
    p.add_argument("--qstep", type=float, default=None, help="Å⁻¹ (default 0.01, saxs 0.001)")
    p.add_argument("--qdamp", type=float, default=0.0, help="Å⁻¹")
    p.add_argument("--qbroad", type=float, default=0.0, help="Å⁻¹")
    p.add_argument("--delta2", type=float, default=0.0, help="Å²")
    p.add_argument("--rmin", type=float, default=0.01, help="Å")
    p.add_argument("--rmax", type=float, default=30.0, help="Å")
    p.add_argument("--rstep", type=float, default=0.01, help="Å")
    p.add_argument("--lorch", action="store_true", help="Lorch window in the Debye → G(r) transform")
    p.add_argument("--wavelength", type=float, default=None, help="Å (xrd on a 2θ grid)")
    p.add_argument("--tth", type=float, nargs=3, metavar=("MIN", "MAX", "STEP"), default=None,
                   help="2θ grid in degrees for --kind xrd (needs --wavelength)")
    p.add_argument("--method", choices=["fast", "exact"], default="fast", help="Debye pair sum")
    p.add_argument("--out", required=True, help="CSV output file")
    p.add_argument("--plot", default=None, help="PNG plot file")


def _add_refine(sub) -> None:
    p = sub.add_parser("refine", help="refine a structure (or search for one, with a [search] section) against "
                                      "data as described by a TOML config")
    p.add_argument("config", help="TOML configuration file (see scatterfit/config.py and examples/)")
    p.add_argument("--out", default=None, help="output folder (overrides [output] dir)")
    p.add_argument("--resume", action="store_true", help="resume from the checkpoint in the output folder")
    p.add_argument("--device", default=None, help="torch device of the refinement, e.g. cuda (default: cpu)")


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="refine bulk Ni against the measured X-ray PDF shipped in diffpy.cmi")
    p.add_argument("--out", default="out/demo", help="output folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scatterfit", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of torch and of the compiled pair-histogram kernels (default: 1)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_simulate(sub)
    _add_refine(sub)
    _add_demo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from scatterfit.errors import ScatterfitError

    args = build_parser().parse_args(argv)
    import torch

    threads = args.threads or 1
    if threads < 1:
        print("error: --threads must be ≥ 1", file=sys.stderr)
        return 2
    torch.set_num_threads(threads)
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # spinning idle workers slow small jobs
    try:
        if args.command == "simulate":
            from scatterfit.commands.simulate import run_simulate

            run_simulate(args)
        elif args.command == "refine":
            from scatterfit.commands.refine import run_refine

            run_refine(args.config, out=args.out, resume=args.resume, device=args.device)
        elif args.command == "demo":
            from scatterfit.commands.demo import run_demo

            run_demo(args.out)
    except ScatterfitError as exc:
        print(f"scatterfit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scatterfit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
