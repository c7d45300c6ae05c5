"""`scatterfit solve DATA... --composition "..."`: ranked structures from measured data and what went into the
vial, without a config. Prints the triage, one line per refined hypothesis and the ranked table; writes
solution.json (schema in report/solution.py), the hypotheses' structures, fits and replayable refine configs, and
report.html into --out."""

from __future__ import annotations

from pathlib import Path

from scatterfit.errors import ScatterfitError

CHECKPOINT = "solve_checkpoint.pt"  # in the output folder: the hypotheses refined so far


def add_arguments(p) -> None:
    p.add_argument("data", nargs="+", help="measured G(r), S(Q) or F(Q) files of one sample (.gr, .fgr, .sq, .fq, "
                                           "...), its Bragg powder patterns (.xy, .xye, .xrdml, ...: 2θ or Q), a "
                                           "molecule's I(Q), or small-angle curves (.dat: Q, I, σ; Q < 1 Å⁻¹)")
    p.add_argument("--composition", required=True,
                   help='a formula ("TiO2", "La0.5Ba0.5CoO3"), the elements ("Ti O", "Si,Ni") or the compounds that '
                        'went into the vial ("ZnS + Ni", "TiO2, BaCO3": their structure types and mixtures)')
    p.add_argument("--cif", action="append", default=[],
                   help="a CIF, or a folder of CIFs, of further crystal hypotheses (repeatable)")
    p.add_argument("--qmax", type=float, default=None, help="Qmax of the data, Å⁻¹, when the header has none")
    p.add_argument("--qmin", type=float, default=None,
                   help="Qmin of a G(r) file's transform, Å⁻¹, when the header has none (PDFgetX3's qmin): held in a "
                        "cluster's Debye model, which otherwise refines it")
    p.add_argument("--qdamp", type=float, default=None,
                   help="the instrument's Q resolution (PDFgui's Qdamp), Å⁻¹, from a calibration standard such as Ni: "
                        "held fixed in every hypothesis instead of refined (PDF data)")
    p.add_argument("--qbroad", type=float, default=None,
                   help="the instrument's Qbroad, Å⁻¹, from the same calibration: held fixed likewise")
    p.add_argument("--radiation", choices=("xray", "neutron", "unit"), default=None,
                   help="the data's radiation when the files do not say (default: the header's, else xray; unit: "
                        "form factors of 1, as a Debye simulation without them)")
    p.add_argument("--wavelength", type=float, default=None,
                   help="the wavelength of 2θ powder patterns, Å, when the files do not say (Cu Kα1: 1.5406)")
    p.add_argument("--density", default=None,
                   help="the sample's measured density, g/cm³ (\"2.20\", \"2.20 g/cm3\") or atoms/Å³ (\"0.0664 "
                        "atoms/A3\"): a glass's or liquid's box is built at it and keeps it (total scattering)")
    p.add_argument("--temperature", type=float, default=None,
                   help="the sample's temperature during the measurement, K: an element above its melting point is "
                        "tried as a liquid first; above room temperature the ADPs may grow with it")
    p.add_argument("--in-solution", action="store_true",
                   help="the sample is dissolved or dispersed in a solvent whose scattering was subtracted: only "
                        "clusters, molecules and particles are ranked, no bulk crystal, mixture or glass")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds after which no new hypothesis is started (default: no limit)")
    p.add_argument("--executor", default=None,
                   help="where the hypotheses run: processes:N, dask-local:N or dask://host:port (default: here)")
    p.add_argument("--potential", default="chgnet",
                   help="energy model of the checks (default chgnet; 'none' skips the energies)")
    p.add_argument("--out", default="solve_out", help="output folder")
    p.add_argument("--resume", action="store_true",
                   help="take the hypotheses already refined from the output folder's checkpoint")
    p.add_argument("--status-file", default=None,
                   help="write the progress as JSON to this file while solving (for schedulers)")


def _cifs(items: list) -> list[Path]:
    out = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out += sorted(path.glob("*.cif"))
        elif path.is_file():
            out.append(path)
        else:
            raise ScatterfitError(f"{path}: --cif: no such file or folder")
    return out


def run(args) -> None:
    from scatterfit.io import load_dataset
    from scatterfit.report.files import OutputLock, check_output_dir
    from scatterfit.report.progress import StatusFile
    from scatterfit.report.solution import write_solution
    from scatterfit.solve.inputs import number_density
    from scatterfit.solve.solve import solve

    out = check_output_dir(args.out)
    datasets, paths = {}, {}
    for k, item in enumerate(args.data):
        path = Path(item)
        if not path.is_file():
            raise ScatterfitError(f"{path}: no such data file")
        name = path.stem if path.stem not in datasets else f"{path.stem}_{k}"
        given = {} if args.wavelength is None else {"wavelength": args.wavelength}
        datasets[name], paths[name] = load_dataset(path, radiation=args.radiation, **given), path
        if datasets[name].x_unit == "degrees" and datasets[name].metadata.get("wavelength") is None:
            raise ScatterfitError(f"{path}: a 2θ powder pattern needs its wavelength: give --wavelength (Å)")
    cifs = _cifs(args.cif)
    density = None if args.density is None else number_density(args.density, args.composition)
    with OutputLock(out):
        potential = None if args.potential.lower() == "none" else args.potential
        status = StatusFile(args.status_file) if args.status_file else None

        def progress(event: dict) -> None:
            print(f"  {event['line']}", flush=True)
            if status is not None:
                status.write(event["step"], event["index"], event["total"], event["line"], event["best_rw"])

        instrument = {k: v for k, v in (("qdamp", args.qdamp), ("qbroad", args.qbroad)) if v is not None}
        solution = solve(datasets, args.composition, cifs=cifs, qmax=args.qmax, qmin=args.qmin, instrument=instrument,
                         density=density, in_solution=args.in_solution, temperature=args.temperature,
                         budget=args.budget,
                         progress=progress, executor=args.executor, potential=potential,
                         checkpoint=out / CHECKPOINT, resume=args.resume)
        if status is not None:
            best = solution.ranked[0]["hypothesis"].rw if solution.ranked else {}
            status.write("done", 1, 1, "solved", min(best.values()) if best else None, final=True)
        for reason in solution.triage.reasons:
            print(f"triage: {reason}")
        record = write_solution(solution, out, paths)
    print(f"{'rank':>4}  {'class':<12} {'hypothesis':<34} {'Rw':>8} {'k':>3} {'ΔBIC':>7} {'E-prior':>7} {'weight':>7} "
          f"{'E-E_best':>9}")
    for h in record["hypotheses"]:
        rw = ", ".join(f"{v:.4f}" for v in h["rw"].values())
        above = "" if h["energy_above_best"] is None else f"{h['energy_above_best']:.3f} eV"
        print(f"{h['rank']:>4}  {h['class']:<12} {h['label'][:34]:<34} {rw:>8} {h['n_parameters']:>3} "
              f"{h['delta_bic']:>7.1f} {h.get('energy_penalty', 0.0):>7.1f} {h['weight']:>7.3f} {above:>9}")
    v = record["verdict"]
    if not v.get("fits", True):
        print(f"NO FIT: {v['evidence']}")
    if v.get("runner_up"):
        told = "told apart" if v["distinguishable"] else "NOT told apart by these data"
        print(f"best: {v['best']}; runner-up {v['runner_up']} at ΔBIC {v['delta_bic']:.1f} ({told}, evidence "
              f"{v['evidence']})")
    if v.get("decided_by"):
        print(f"decided by {v['decided_by']}")
    if v.get("caution"):
        print(f"caution: {v['caution']}")
    if v.get("stability"):
        print(f"physically {v['stability']}")
    for note in record["notes"]:
        print(f"note: {note}")
    if v.get("next_measurement"):
        print(f"to separate them: {v['next_measurement']}")
    times = ", ".join(f"{k} {s:.0f} s" for k, s in record["seconds_per_class"].items())
    print(f"solve time {record['wall_time_s']:.0f} s ({times}); results in {out}/ (solution.json, report.html)")
