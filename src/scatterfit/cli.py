"""scatterfit: atomic structures from scattering data (PDF, total scattering, powder diffraction, SAXS; X-ray or
neutron) by differentiable refinement of scattering, energy and chemical restraints, and by swarm search.

Subcommands: simulate (a pattern from a structure file), refine (a refinement or search described by a TOML
config), solve (ranked structures from data and a composition, no config), config (the documentation of every
config key), demo (bulk Ni against its measured PDF), serve (the HTTP service), submit and status (its
client). Every problem
with the input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {"simulate": "compute a pattern (G(r), S(Q), F(Q), I(Q), SAXS or powder) from a structure file",
            "refine": "refine a structure (or search for one, with a [search] section) against data, as a TOML "
                      "config describes",
            "solve": "ranked structures from measured G(r), S(Q) or F(Q) data and a composition, without a config",
            "config": "print the documentation of the config file: every section and key, its type, default, "
                      "range and meaning",
            "demo": "refine bulk Ni against the measured X-ray PDF shipped in diffpy.cmi",
            "serve": "run the HTTP service: a job queue of solves and refines, and a results page",
            "submit": "queue a solve on a scatterfit server (prints the job id)",
            "status": "a job's state and progress on a scatterfit server"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scatterfit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of torch and of the compiled pair-histogram kernels (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in COMMANDS.items():
        p = sub.add_parser(name, help=text, description=text,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        importlib.import_module(f"scatterfit.commands.{name}").add_arguments(p)
    return parser


def _log_warnings_to_stderr() -> None:
    """The library logs through ``logging`` (logger "scatterfit"); the command line shows its warnings as
    "scatterfit: warning: ..." lines on the current stderr."""
    import logging

    logger = logging.getLogger("scatterfit")
    if any(getattr(h, "scatterfit_cli", False) for h in logger.handlers):
        return
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: print(f"scatterfit: {record.levelname.lower()}: {record.getMessage()}",
                                        file=sys.stderr)
    handler.scatterfit_cli = True
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    from scatterfit.errors import ScatterfitError

    args = build_parser().parse_args(argv)
    _log_warnings_to_stderr()
    if args.threads < 1:
        print("scatterfit: error: --threads must be ≥ 1", file=sys.stderr)
        return 2
    command = importlib.import_module(f"scatterfit.commands.{args.command}")
    try:  # a command's cheap checks of its inputs, before torch and numba are imported
        getattr(command, "check", lambda _: None)(args)
    except ScatterfitError as exc:
        print(f"scatterfit: error: {exc}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)  # the compiled pair kernels follow it (histogram._kernel_threads)
    from scatterfit.optim.executor import reuse_freed_memory

    reuse_freed_memory()
    try:
        command.run(args)
    except ScatterfitError as exc:
        print(f"scatterfit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scatterfit: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
