"""Results as files: the refined structure (CIF/xyz, extxyz), fitted curves (CSV + PNG), derived G(r) of
S(Q)/F(Q) fits, the loss history, the chemistry report and ``summary.json``; for a search also ``search.json``
and its history. Every set is written atomically (report/files.py): ``summary.json`` last."""

from __future__ import annotations

import json
import platform

import numpy as np

from scatterfit.errors import ScatterfitError
from scatterfit.report.files import ResultSet


def chemistry_report(result, options: dict | None = None, structure=None) -> dict:
    """Coordination, bond lengths, angles (and BVS with oxidation states) of the refined structure (or of
    ``structure``, a phase's); ``options`` are chemistry_report's keyword arguments (cutoffs, oxidation). An
    analysis that cannot run is reported as {"error": message}, not raised."""
    from scatterfit.analysis.chemistry import chemistry_report as analyse

    try:
        return analyse(result.structure if structure is None else structure,
                       **{k: v for k, v in (options or {}).items() if v is not None})
    except ScatterfitError as exc:
        return {"error": str(exc)}


def phase_summary(result, chemistry: dict | None = None) -> dict:
    """{phase: {"atom_fraction", "mass_fraction", "scale", "scale_by_term", "space_group", "chemistry"}} of a
    refinement of several phases ({} for one): the atom and mass (weight) fractions refined, and each phase's
    scale as PDFgui and Rietveld programs print it (the data term's scale times the phase's weight, on the first
    data term that sees the phase, and on every one under scale_by_term)."""
    from scatterfit.structure.spacegroup import detect_space_group

    phases = result.state.phases
    if not phases:
        return {}
    params = result.parameters()
    out = {}
    for name, st in phases.items():
        scales = {term: tv.breakdown["phase_scales"][name] for term, tv in result.terms.items()
                  if name in tv.breakdown.get("phase_scales", {})}
        out[name] = {"atom_fraction": params[f"fraction[{name}]"], "mass_fraction": params[f"mass_fraction[{name}]"],
                     "scale": next(iter(scales.values()), None), "scale_by_term": scales,
                     "space_group": detect_space_group(st.structure),
                     "chemistry": chemistry_report(result, chemistry, st.structure)}
    return out


def derived_grs(result) -> dict:
    """{term: derived_gr(...)} for the S(Q)/F(Q) data terms: data and model G(r) by the same transform."""
    from scatterfit.analysis.derived_gr import derived_gr

    out = {}
    for name, tv in result.terms.items():
        c = tv.curves
        if c and c.get("form"):
            out[name] = derived_gr(c["x"], c["y_obs"], c["y_calc"], c["form"])
    return out


def reported_parameters(result) -> dict:
    """The parameters as reported: every group of the parametrisation, except a "scale" that is not refined
    (the data terms' own analytic scales are reported once, under terms.<name>.scale)."""
    params = result.parameters()
    if "scale" not in result.parametrisation.free:
        params.pop("scale", None)
    return params


def summary(result, chemistry: dict | None = None, derived: dict | None = None,
            uncertainties: dict | None = None) -> dict:
    """The JSON summary of a refinement Result; ``chemistry`` are the chemistry report's options,
    ``derived`` is derived_grs(result) when the caller has it already, and ``uncertainties`` the esds and
    correlations of optim.uncertainty."""
    import ase
    import torch

    import scatterfit

    terms = {k: {"value": float(v.value.detach()), **v.breakdown} for k, v in result.terms.items()}
    for name, d in (derived_grs(result) if derived is None else derived).items():
        terms[name]["rw_derived_gr"] = d["rw"]
    phases = phase_summary(result, chemistry)
    out = {
        "loss": result.loss,
        "terms": terms,
        "parameters": reported_parameters(result),
        "uncertainties": uncertainties or {"skipped": "not computed"},
        **({"phases": phases} if phases else {}),
        "chemistry": chemistry_report(result, chemistry) if not phases else {"phases": "see phases.<name>.chemistry"},
        "wall_time_s": result.wall_time,
        "steps": len(result.history),
        "versions": {"scatterfit": scatterfit.__version__, "torch": torch.__version__, "ase": ase.__version__,
                     "python": platform.python_version()},
    }
    from scatterfit.structure.spacegroup import detect_space_group

    final = detect_space_group(result.structure) if not phases else None
    if final is not None:  # what the refinement started from and ended in (a lowered symmetry is worth a look)
        start = detect_space_group(result.parametrisation.structure)
        out["space_group"] = {"start": start, "refined": final}
    sym = result.structure.symmetry
    if sym is not None:  # a symmetric start: its group, and how far a free stage moved the atoms off it
        from scatterfit.structure.symmetry import symmetrise

        pos = result.structure.positions.detach().cpu().numpy()
        out["point_group"] = {"group": sym.group, "orbits": list(sym.sizes),
                              "max_deviation_A": float(abs(pos - symmetrise(pos, sym)).max())}
    return out


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def stage_refinement(files: ResultSet, result, chemistry: dict | None = None, uncertainties: dict | None = None
                     ) -> dict:
    """Write a refinement's files into the staging area of ``files``; returns its summary (not yet written)."""
    from scatterfit.report.plots import axis_labels, plot_chemistry, plot_fit, plot_history
    from scatterfit.structure.cif import write_cif

    esd = (uncertainties or {}).get("esd") or {}
    for name, st in result.state.phase_states().items():  # refined.cif, or refined_<phase>.cif for each phase
        suffix = f"_{_safe(name)}" if name else ""
        atoms = st.structure.to_ase()
        if st.structure.cell is not None and st.structure.periodic:  # occupancies, Uiso and esds survive
            own = {k[len(name) + 1:]: v for k, v in esd.items() if k.startswith(f"{name}.")} if name else esd
            write_cif(st.structure, files.stage(f"refined{suffix}.cif"), esd=own or None)
        else:
            atoms.write(str(files.stage(f"refined{suffix}.xyz")))
        atoms.write(str(files.stage(f"refined{suffix}.extxyz")), format="extxyz")
    for name, tv in result.terms.items():
        if not tv.curves:
            continue
        c, safe = tv.curves, _safe(name)
        np.savetxt(files.stage(f"fit_{safe}.csv"), np.column_stack([c["x"], c["y_obs"], c["y_calc"],
                                                                   c["y_obs"] - c["y_calc"]]),
                   delimiter=",", header="x,data,model,difference", comments="")
        xlabel, ylabel = axis_labels(c.get("kind", "iq"), c.get("x_unit"))
        plot_fit(c["x"], c["y_obs"], c["y_calc"], xlabel, ylabel, files.stage(f"fit_{safe}.png"),
                 title=f"{name}: Rw = {tv.breakdown.get('rw', float('nan')):.4f}")
    derived = derived_grs(result)
    for name, d in derived.items():
        safe = _safe(name)
        np.savetxt(files.stage(f"fit_{safe}_derived_gr.csv"), np.column_stack([d["r"], d["g_obs"], d["g_calc"]]),
                   delimiter=",", header="r,data,model", comments="")
        plot_fit(d["r"], d["g_obs"], d["g_calc"], "r (Å)", "G(r) from the fitted Q range (Lorch)",
                 files.stage(f"fit_{safe}_derived_gr.png"), title=f"{name}: derived G(r), Rw = {d['rw']:.4f}")
    np.savetxt(files.stage("loss_history.csv"), np.asarray(result.history), header="loss", comments="")
    plot_history(result.history, files.stage("loss_history.png"))
    out = summary(result, chemistry, derived, uncertainties)
    reports = {name: p["chemistry"] for name, p in out.get("phases", {}).items()} or {"": out["chemistry"]}
    for name, report in reports.items():
        png = f"chemistry{'_' + _safe(name) if name else ''}.png"
        title = f"{name + ': ' if name else ''}coordination and bond angles"
        if plot_chemistry(report, files.stage(png), title=title) is False:
            files.names.remove(png)
    return out


def write_refinement(result, out_dir, chemistry: dict | None = None, uncertainties: dict | None = None) -> dict:
    """Write a refinement Result into ``out_dir`` atomically (summary.json last); returns the summary."""
    files = ResultSet(out_dir)
    try:
        out = stage_refinement(files, result, chemistry, uncertainties)
        files.commit("summary.json", out)
    except BaseException:
        files.discard()
        raise
    return out


def write_search(result, out_dir, chemistry: dict | None = None, uncertainties: dict | None = None) -> dict:
    """Write a SearchResult: the best candidate's refinement (as write_refinement), search.json and the
    search history, atomically with summary.json last. Returns the search record."""
    from scatterfit.report.plots import plot_history

    files = ResultSet(out_dir)
    try:
        summary_out = (stage_refinement(files, result.refined, chemistry, uncertainties)
                       if result.refined is not None else {})
        record = {"best": result.best, "loss": result.loss, "evaluations": result.evaluations,
                  "generations": result.generations, "failed_candidates": result.failed,
                  "failures": result.failures,
                  "wall_time_s": result.wall_time, "top_candidates": result.top,
                  "best_loss_per_generation": result.history}
        files.stage("search.json").write_text(json.dumps(record, indent=2, default=str))
        plot_history(result.history, files.stage("search_history.png"), ylabel="best loss", xlabel="generation")
        files.commit("summary.json", {**summary_out, "search": {k: record[k] for k in
                                                                ("best", "loss", "evaluations", "failed_candidates")}})
    except BaseException:
        files.discard()
        raise
    return record
