"""`scatterfit refine CONFIG.toml`: build the API objects a config describes, refine (or search, with a [search]
section), write the results.

Paths in the config (data, structure, [output].dir) are resolved against the config file's folder; --out is
taken as given on the command line. The output folder is checked before anything is computed and locked while
the run writes to it; --resume refuses a checkpoint written for another config or other data. --evaluate refines
nothing: it writes the fits, summary and structure of the config's starting model with every parameter as given
(a structure from another refinement or a solve, scored under this config's data and terms).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from scatterfit.config import load_config
from scatterfit.errors import ScatterfitError

log = logging.getLogger(__name__)


LISTED = 8  # sites of one indexed parameter ("Biso[Si1]", ...) printed one by one; more are summarised


def parameter_line(params: dict, errors: dict) -> str:
    """"a = 3.5250(3), Uiso_Ni = 0.00624(12), ..." with esds where they were computed; a parameter given per site
    for more than LISTED sites (a box's every atom) as its range and mean (every value is in summary.json)."""
    from scatterfit.structure.cif import with_esd

    esd = errors.get("esd", {})

    def family(key: str, value) -> str | None:  # "Biso" of "Biso[Si1]"
        return key.split("[", 1)[0] if isinstance(value, float) and key.endswith("]") and "[" in key else None

    families: dict = {}
    for k, v in params.items():
        if family(k, v) is not None:
            families.setdefault(family(k, v), []).append(v)
    many = {name for name, values in families.items() if len(values) > LISTED}
    shown = []
    for k, v in params.items():
        name = family(k, v)
        if name in many:
            values = families.pop(name, None)  # the family's one summary, where its first site is
            if values is not None:
                shown.append(f"{name} ({len(values)} sites) = {min(values):.5g} … {max(values):.5g}, mean "
                             f"{sum(values) / len(values):.5g}")
        elif isinstance(v, float):
            shown.append(f"{k} = {with_esd(v, esd[k]) if k in esd else f'{v:.5g}'}")
        elif v is not None:
            shown.append(f"{k} = {v}")
    return ", ".join(shown)


def symmetry_note(summary: dict) -> None:
    """A warning when the refinement ended in a lower space group than it started from (summary["space_group"])."""
    groups = summary.get("space_group") or {}
    start, final = groups.get("start"), groups.get("refined")
    if start and final and final["operations"] < start["operations"]:
        log.warning(f"the refinement lowered the symmetry from {start['symbol']} ({start['number']}) to "
                    f"{final['symbol']} ({final['number']}); constrain the cell (bounds.cell) or the positions if "
                    "the data do not call for it")


def add_arguments(p) -> None:
    p.add_argument("config", help="TOML configuration file (documented by `scatterfit config`; see examples/)")
    p.add_argument("--out", default=None, help="output folder (default: [output].dir, relative to the config file)")
    p.add_argument("--resume", action="store_true", help="resume from the checkpoint in the output folder")
    p.add_argument("--device", default="cpu", help="torch device of the refinement, e.g. cuda")
    p.add_argument("--status-file", default=None,
                   help="write the progress as JSON to this file while refining (for schedulers)")
    p.add_argument("--qmax", type=float, default=None,
                   help="Qmax (Å⁻¹) of PDF data whose file and config give none (0: no termination ripples)")
    p.add_argument("--evaluate", action="store_true",
                   help="refine nothing: score the starting model as given (every parameter at its start, the data "
                        "terms' analytic scales solved) and write its fits and summary")


def run(args) -> None:
    run_refine(args.config, out=args.out, resume=args.resume, device=args.device, qmax=args.qmax,
               status_file=args.status_file, evaluate=args.evaluate)


def output_dir(cfg, out=None) -> Path:
    """--out as given, else [output].dir resolved against the config file, else out/<config name> beside it."""
    if out is not None:
        return Path(out)
    return cfg.resolve(cfg.output.get("dir", "out/" + cfg.path.stem))


def run_refine(config_path, out=None, resume: bool = False, device: str | None = None, qmax: float | None = None,
               status_file=None, evaluate: bool = False):
    from scatterfit.config.builders import (
        build_datasets,
        build_loss,
        build_model_structure,
        build_parametrisation,
        build_strategy,
        chemistry_options,
        fingerprint,
        resolve_device,
    )
    from scatterfit.optim import refine
    from scatterfit.optim.runner import evaluate as evaluate_start
    from scatterfit.optim.uncertainty import uncertainties
    from scatterfit.report.files import OutputLock, check_output_dir
    from scatterfit.report.progress import RefineProgress, StatusFile
    from scatterfit.report.results import reported_parameters, write_refinement

    cfg = load_config(config_path)
    dev = resolve_device(device)
    out_dir = check_output_dir(output_dir(cfg, out))
    digest = fingerprint(cfg, qmax)
    if evaluate and (cfg.search or resume):
        raise ScatterfitError(f"{config_path}: --evaluate scores one starting model: not with "
                              f"{'a [search] section' if cfg.search else '--resume'}")
    if cfg.search:
        from scatterfit.commands.search import run_search

        if dev.type != "cpu":
            raise ScatterfitError("--device applies to refinements; a [search] runs its candidates on the CPU")
        with OutputLock(out_dir):
            return run_search(cfg, out_dir, resume=resume, fingerprint=digest, qmax=qmax)
    structure = build_model_structure(cfg, dev)
    datasets = build_datasets(cfg)
    loss = build_loss(cfg, datasets, qmax)
    if evaluate:  # nothing free: every value as given (a free group's start would be moved off its bounds)
        from dataclasses import replace

        cfg = replace(cfg, parameters={**cfg.parameters, "free": []})
    param = build_parametrisation(cfg, structure, loss)
    stages = [] if evaluate else build_strategy(cfg, loss, param)
    progress = RefineProgress(stages, StatusFile(status_file) if status_file else None)
    t0 = time.perf_counter()
    with OutputLock(out_dir):
        try:
            if evaluate:
                result = evaluate_start(loss, param)
            else:
                result = refine(loss, param, stages, seed=cfg.output.get("seed", 0),
                                checkpoint=out_dir / "checkpoint.pt",
                                checkpoint_every=cfg.output.get("checkpoint_every", 10), resume=resume,
                                observers=[progress], fingerprint=digest)
        finally:
            progress.close()
        if progress.status is not None:
            progress.status.write("done", progress.total, progress.total, "refined", progress.best_rw, final=True)
        errors = ({"skipped": "nothing refined (--evaluate)"} if evaluate
                  else uncertainties(loss, param, result.theta))
        written = write_refinement(result, out_dir, chemistry_options(cfg, loss), errors)
    for name, tv in result.terms.items():
        if "rw" in tv.breakdown:
            b = tv.breakdown
            labels = (("rp", "Rp"), ("r_bragg", "R_Bragg"), ("chi2_per_point", "χ²/N"),
                      *((k, k.replace("r_bragg", "R_Bragg")) for k in b if k.startswith("r_bragg[")))
            extra = "".join(f", {label} {b[key]:.4g}" for key, label in labels if key in b)
            print(f"Rw = {b['rw']:.4f}   [{name}, scale {b['scale']:.5g}{extra}]")
        elif "energy_per_atom_eV" in tv.breakdown:
            print(f"E = {tv.breakdown['energy_per_atom_eV']:.4f} eV/atom   [{name}, {tv.breakdown['potential']}]")
        else:
            print(f"penalty = {float(tv.value.detach()):.4g}   [{name}]")
    print(parameter_line(reported_parameters(result), errors))
    symmetry_note(written)
    if errors.get("undetermined"):
        log.warning(f"the data do not determine {', '.join(errors['undetermined'])} at this point (no gradient: "
                    "a symmetric start the refinement cannot leave); their uncertainties are not given")
    for a, b, r in errors.get("high_correlations", []):
        log.warning(f"{a} and {b} are correlated by {r:+.3f}: the data do not tell them apart")
    what = "evaluation (nothing refined)" if evaluate else "refinement"
    print(f"{what} time {time.perf_counter() - t0:.1f} s; results in {out_dir}/")
    return result
