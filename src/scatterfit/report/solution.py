"""The files of a solve: solution.json (schema below, versioned), per hypothesis its starting and refined
structures, a replayable refine config and its fit, and a self-contained HTML page; written atomically with
solution.json last.

solution.json, schema "scatterfit.solution/1":
    schema, composition, data ({name: path}), triage ({kind, r_range, extent, first_peak, slope, classes,
    reasons}), verdict ({best, fits, runner_up, delta_bic, distinguishable, evidence, next_measurement, caution:
    present from a best mean Rw of 0.3, whose misfit is mostly systematic, stability: present when the best's
    phases lie over 0.1 eV/atom above the library's most stable type of their formula}),
    seconds_per_class, wall_time_s, failed ([{label, class, error}]), and
    hypotheses: best first, each {rank, class, label, formula, n_atoms (finite models and boxes, else null), space_group
    (number, crystals), point_group (clusters: Schoenflies; kept by the symmetric refinement, or the polyhedral
    group the free one still has within 0.1 Å, null if none), phases (mixtures and core–shell particles: [{name,
    formula, space_group, weight_fraction, atom_fraction}], a core–shell particle's also with role "core" and
    diameter, or role "shell", inner_diameter and shell_thickness, Å), rw
    ({dataset: Rw}), rw_measured (boxes on S(Q)/F(Q) data: {dataset: Rw on the measured S(Q) − 1 fitted beside the
    derived G(r)}, else absent), bic, energy_penalty (−2 ln of the energy's prior, solve/ranking.energy_penalty: 0
    without an energy above the library), delta_bic (bic + energy_penalty, less the first's), weight, n_parameters,
    energy_per_atom (eV/atom, the default potential; null: not computed), energy_above_best (eV/atom above the best
    of the same formula), energy_above_library (crystals, mixtures, particles in envelopes: eV/atom of the phases
    above the most stable library type of their formulas, each at its estimated cell; null: not computed) and
    library_reference (those types), checks (the refined structure's chemistry: coordination, bonds, too_close;
    {phase: ...} for a mixture), decided_by ("energy" when the energy put it first), parameters, structure_files,
    config (the replayable refine config's file name), source, seconds}; notes (what was not computed, and why),
    workers (processes the hypotheses ran on), screen (every library structure type the composition fits, best
    first: {label, rw on the short range, cell_factor, uiso, kept: refined}).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from scatterfit.report.files import ResultSet

SCHEMA = "scatterfit.solution/1"
WRITTEN = 8  # hypotheses written out with their files (the rest are listed in solution.json only)
VIEWED = 3  # hypotheses drawn in 3D on the page
SCREENED = 15  # rows of the library screen on the page


def _inline(value) -> str:
    """``value`` (a dict of dicts, numbers and strings) as a TOML inline value."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_inline(v)}' for k, v in value.items()) + " }"
    return json.dumps(value)


def _stage_lines(stage) -> list[str]:
    """A [[strategy]] table of ``stage``: its optimizer and every setting that differs from the default."""
    import dataclasses

    lines = ["[[strategy]]", f'optimizer = "{stage.optimizer}"']
    for f in dataclasses.fields(stage):
        value = getattr(stage, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if value is not None and value != default:
            lines.append(f"{f.name} = {_inline(value)}")
    return lines + [""]


def _config_text(h, names: dict, datasets: dict, data_paths: dict, prefix: str) -> str:
    """A refine config that replays hypothesis ``h``: its starting structures (CIFs beside it), the data, the fit
    range and its free parameters and starting values (the default r-range ramp; for a Bragg pattern the whole
    pattern and the powder ramp)."""
    from scatterfit.optim.stages import powder_ramp
    from scatterfit.scattering.models import make_forward_model
    from scatterfit.solve.hypotheses import (
        BOUNDS,
        BOX_ENERGY_WEIGHT,
        MEASURED_SHARE,
        RESTRAINT_WEIGHTS,
        box_qmin,
        data_term_names,
        fit_range,
        measured_curve,
        measured_name,
        network_stages,
        shape_stages,
    )
    from scatterfit.structure.parametrisation import background_bounds

    lines = [f"# {h.kind}: {h.label} (written by scatterfit solve; replay: scatterfit refine {prefix}.toml)"]
    if len(h.structures) == 1:
        (structure,) = h.structures.values()
        lines += ["[structure]", f'file = "{names[next(iter(h.structures))]}"']
        if "orbits" in h.free:  # a symmetric cluster: its point group, so that its orbits are refined
            lines += [f'point_group = "{structure.symmetry.group}"']
        lines += [""]
    else:
        for phase in h.structures:
            lines += ["[[phases]]", f'name = "{phase}"', f'file = "{names[phase]}"']
            lines += [f'shell_of = "{h.shells[phase]}"'] if phase in h.shells else []
            lines += [""]
    powder = h.model == "powder"
    for name, path in data_paths.items():
        if name not in datasets:  # a measured curve's file: written with its term (below)
            continue
        lines += ["[[datasets]]", f'name = "{name}"', f'file = "{Path(path).resolve()}"',
                  f'radiation = "{datasets[name].radiation}"']
        if powder and datasets[name].metadata.get("wavelength") is not None:
            lines += [f"wavelength = {float(datasets[name].metadata['wavelength']):g}"]
        if datasets[name].kind == "gr" and datasets[name].metadata.get("qmax"):  # the header's, or --qmax
            lines += [f"qmax = {float(datasets[name].metadata['qmax']):.6g}"]
        lines += [""]
    for name, data in datasets.items():
        if powder:  # the whole pattern
            lines += ["[[terms]]", f'dataset = "{name}"', 'model = "powder"', ""]
            continue
        if data.kind != "gr":  # an intensity: the whole pattern
            lines += ["[[terms]]", f'dataset = "{name}"', f'model = "{h.model}"',
                      *(f"{k} = {_inline(v)}" for k, v in h.options.items()), ""]
            continue
        xmin, xmax = fit_range(data)
        lines += ["[[terms]]", f'dataset = "{name}"', f"xmin = {xmin:g}", f"xmax = {xmax:g}"]
        if measured_curve(h, data) is not None:
            lines += [f"weight = {MEASURED_SHARE:g}  # the measured S(Q) − 1 below has the rest"]
        lines += [] if h.fit_scale else ["fit_scale = false  # G(r) on an absolute scale: scale 1"]
        if h.model in ("box", "debye"):  # the Q range the solve's model transformed over
            model = make_forward_model(h.model, data, qmax=float(data.metadata["qmax"]))
            lines += [f'model = "{h.model}"', f"qmin = {model.qmin:g}", f"qmax = {model.qmax:g}"]
        lines += [""]
        if measured_curve(h, data) is not None:  # a box fits the measured S(Q) − 1 too (written beside the G(r))
            measured = measured_name(name)
            lines += ["[[datasets]]", f'name = "{measured}"', f'file = "{Path(data_paths[measured]).resolve()}"',
                      'kind = "fq"', f'radiation = "{data.radiation}"', "",
                      "[[terms]]", f'dataset = "{measured}"', 'model = "box-interference"  # S(Q) − 1',
                      f"xmin = {box_qmin(h):.6g}", f"weight = {1 - MEASURED_SHARE:g}"]
            lines += [] if h.fit_scale else ["fit_scale = false"]
            lines += [""]
    for restraint, args in h.restraints.items():
        for one in args if isinstance(args, list) else [args]:
            lines += ["[[terms]]", 'kind = "restraint"', f'restraint = "{restraint}"', f"args = {_inline(one)}",
                      f"weight = {RESTRAINT_WEIGHTS[restraint]:g}", ""]
    if h.energy:  # a box's classical potential (solve/hypotheses.energy_terms)
        lines += ["[[terms]]", 'kind = "energy"', f'potential = "{h.energy["potential"]}"',
                  *([f"args = {_inline(h.energy['args'])}"] if h.energy["args"] else []),
                  f"weight = {BOX_ENERGY_WEIGHT:g}", ""]
    # a dotted key is quoted ("A.delta2" is one key; bare, TOML reads a nested table)
    values = ", ".join(f"{json.dumps(k) if '.' in k else k} = {v:g}" for k, v in h.values.items())
    lines += ["[parameters]", f"free = {json.dumps(h.free)}", f"values = {{ {values} }}"]
    extra = {"background": background_bounds(d.y for d in datasets.values())} if powder else {}
    bounds = {k: v for k, v in {**BOUNDS, **extra, **h.bounds}.items() if k in h.free or k in h.values}
    if bounds:
        lines += ["bounds = { " + ", ".join(f"{k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}"
                                            for k, v in bounds.items()) + " }"]
    lines += [""]
    if h.anneal:  # the melt-and-quench on the restraints, then the fit (solve/hypotheses.network_stages)
        for stage in network_stages(h, data_term_names(h, datasets)):
            lines += _stage_lines(stage)
    elif h.steps is not None:
        lines += ["[[strategy]]", 'optimizer = "lbfgs"', f"steps = {h.steps}", ""]
    elif h.stages and not powder and h.model != "shape":  # the r-range ramp or the warm stage it was refined with
        for stage in h.stages:
            lines += _stage_lines(stage)
    if h.model == "shape":  # LM stages over the whole curve (solve/hypotheses.shape_stages)
        for stage in shape_stages():
            lines += ["[[strategy]]", 'optimizer = "lm"', f"steps = {stage.steps}",
                      *(["release = true"] if stage.release else []), ""]
    if powder:  # the powder ramp of solve (optim/stages.powder_ramp)
        for stage in powder_ramp(h.free):
            lines += ["[[strategy]]", 'optimizer = "lm"', f"steps = {stage.steps}", f"tol = {stage.tol:g}"]
            lines += [f"free = {json.dumps(stage.free)}"] if stage.free is not None else []
            lines += [""]
    lines += ["[output]", f'dir = "{prefix}_refine"', ""]
    return "\n".join(lines)


def _hypothesis_record(row: dict, rank: int) -> dict:
    h = row["hypothesis"]
    from scatterfit.structure.library import formula_of
    from scatterfit.structure.spacegroup import detect_space_group

    result = h.result
    params = result.parameters() if result is not None else {}
    phases = result.state.phase_states() if result is not None else {}
    record = {"rank": rank, "class": h.kind, "label": h.label, "formula": h.formula, "n_atoms": None,
              "space_group": None, "rw": h.rw, "bic": row["bic"], "energy_penalty": row.get("energy_penalty", 0.0),
              "delta_bic": row["delta_bic"],
              "weight": row["weight"], "n_parameters": h.n_parameters, "energy_per_atom": h.energy_per_atom,
              "energy_above_best": h.energy_above_best, "energy_above_library": h.energy_above_library,
              "library_reference": h.library_reference, "checks": h.checks, "decided_by": row.get("decided_by"),
              "parameters": {k: v for k, v in params.items() if isinstance(v, (int, float, str)) or v is None},
              "source": h.source, "seconds": h.seconds}
    if result is not None:  # a box fitted to the measured S(Q) − 1 beside the derived G(r)
        from scatterfit.solve.hypotheses import measured_name

        measured = {name: result.terms[measured_name(name)].breakdown["rw"] for name in h.rw
                    if measured_name(name) in result.terms}
        if measured:
            record["rw_measured"] = measured
    if h.kind == "mixture" or len(phases) > 1:
        record["phases"] = [{"name": name, "formula": formula_of(st.structure),
                             "space_group": (detect_space_group(st.structure) or {}).get("number"),
                             "weight_fraction": params.get(f"mass_fraction[{name}]"),
                             "atom_fraction": params.get(f"fraction[{name}]")} for name, st in phases.items()]
        cores = set(h.shells.values())
        for phase in record["phases"]:  # a core–shell particle: each phase's place and size, Å
            name = phase["name"]
            if name in cores:
                phase.update(role="core", diameter=params.get(f"{name}.spdiameter"))
            elif name in h.shells:
                phase.update(role="shell", inner_diameter=params.get(f"{name}.spdiameter"),
                             shell_thickness=params.get(f"{name}.shell_thickness"))
    elif result is not None:
        found = detect_space_group(result.structure)
        record["space_group"] = found["number"] if found else None
        if result.structure.cell is None or h.kind == "amorphous":
            record["n_atoms"] = len(result.structure)
        if h.kind == "cluster":  # the point group the search kept (the free refinement may break it)
            from scatterfit.structure.symmetry import detect_point_group

            start = next(iter(h.structures.values()))
            record["point_group"] = (start.symmetry.group if "orbits" in h.free and start.symmetry is not None
                                     else detect_point_group(result.structure.positions.detach().cpu().numpy(),
                                                             result.structure.numbers.cpu().numpy(), tol=0.1))
    return record


def _png_tag(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def write_solution(solution, out_dir, data_paths: dict) -> dict:
    """Write ``solution`` (solve.Solution) into ``out_dir`` atomically; returns the solution.json record."""
    from scatterfit.report.plots import axis_labels, plot_fit
    from scatterfit.solve.hypotheses import measured_name, phase_name
    from scatterfit.structure.files import structure_suffix, write_structure

    files = ResultSet(out_dir)
    try:
        records, figures, views = [], [], []
        originals, data_paths = dict(data_paths), dict(data_paths)
        for name, data in solution.datasets.items():  # a G(r) derived from S(Q) or F(Q): written for the replays
            if data.metadata.get("derived_from"):
                derived = f"{phase_name(name)}_derived.gr"
                np.savetxt(files.stage(derived), np.column_stack([data.x, data.y]), comments="",
                           header=f"qmax = {data.metadata['qmax']:.6g}\n#### start data\n#L r G")
                data_paths[name] = Path(out_dir) / derived
                reciprocal = data.metadata.get("reciprocal")
                if reciprocal is not None:  # the measured curve as S(Q) − 1 on the G(r)'s scale (a box fits it)
                    measured = f"{phase_name(name)}_measured.fq"
                    np.savetxt(files.stage(measured), np.column_stack([reciprocal["q"], reciprocal["s_minus_1"]]),
                               comments="# ", header=f"Q (1/A), S(Q) - 1 of {data.path or name}, on the scale of "
                                                     "its derived G(r) (written by scatterfit solve)")
                    data_paths[measured_name(name)] = Path(out_dir) / measured
            elif data.metadata.get("weights") == "relative":  # σ assigned by the solve: written with them
                weighted = f"{phase_name(name)}_weighted.dat"
                np.savetxt(files.stage(weighted), np.column_stack([data.x, data.y, data.sigma]), comments="# ",
                           header="Q (1/A), I, sigma = |I| (relative weights assigned by scatterfit solve)")
                data_paths[name] = Path(out_dir) / weighted
        for rank, row in enumerate(solution.ranked, 1):
            record = _hypothesis_record(row, rank)
            h = row["hypothesis"]
            if rank <= WRITTEN:
                prefix = f"h{rank:02d}_{phase_name(h.label)}"
                names = {}
                for phase, s in h.structures.items():
                    names[phase] = f"{prefix}_start_{phase}{structure_suffix(s)}"
                    write_structure(s, files.stage(names[phase]))
                files.stage(f"{prefix}.toml").write_text(_config_text(h, names, solution.datasets, data_paths,
                                                                      prefix))
                written = list(names.values())
                for phase, st in h.result.state.phase_states().items():
                    name = (f"{prefix}_refined{'_' + phase if len(h.structures) > 1 else ''}"
                            f"{structure_suffix(st.structure)}")
                    write_structure(st.structure, files.stage(name))
                    written.append(name)
                for name, tv in h.result.terms.items():
                    c = tv.curves
                    if c is None:  # a restraint
                        continue
                    png = f"{prefix}_fit_{phase_name(name)}.png"
                    plot_fit(c["x"], c["y_obs"], c["y_calc"], *axis_labels(c["kind"], c.get("x_unit")),
                             files.stage(png), title=f"#{rank} {h.label}: Rw = {tv.breakdown['rw']:.4f}")
                    csv = f"{prefix}_fit_{phase_name(name)}.csv"
                    np.savetxt(files.stage(csv), np.column_stack([c["x"], c["y_obs"], c["y_calc"]]), delimiter=",",
                               header="x,data,model", comments="")
                    figures.append((rank, h.label, files.staging / png))
                if rank <= VIEWED:
                    states = h.result.state.phase_states()
                    views += [(f"#{rank} {h.label}" + (f": {phase}" if len(states) > 1 else ""), st.structure)
                              for phase, st in states.items()]
                    written += [png, csv]
                record["structure_files"], record["config"] = written, f"{prefix}.toml"
            records.append(record)
        out = {"schema": SCHEMA, "composition": solution.composition,
               "data": {k: str(Path(v).resolve()) for k, v in originals.items()},
               "triage": solution.triage.as_dict(), "verdict": solution.verdict, "hypotheses": records,
               "failed": [{"label": h.label, "class": h.kind, "error": h.error} for h in solution.failed],
               "seconds_per_class": solution.seconds, "wall_time_s": solution.wall_time, "notes": solution.notes,
               "workers": solution.workers, "screen": [row.as_dict() for row in solution.screened]}
        files.stage("report.html").write_text(_page(out, figures, views))
        files.commit("solution.json", out)
    except BaseException:
        files.discard()
        raise
    return out


def _energy_cell(h: dict) -> str:
    if h.get("energy_per_atom") is None:
        return "–"
    above = h.get("energy_above_best") or 0.0
    text = f"{h['energy_per_atom']:.3f} (+{above:.3f})"
    if h.get("energy_above_library") is not None:
        text += f"; {h['energy_above_library']:+.3f} over {html.escape(str(h['library_reference']))}"
    return text


def _checks_cell(h: dict) -> str:
    """Coordination and contacts in one line (each phase's for a mixture)."""
    checks = h.get("checks") or {}
    phases = checks if "coordination" not in checks else {"": checks}
    parts = []
    for name, c in phases.items():
        cn = ", ".join(f"{el} {n:g}" for el, n in c.get("coordination", {}).items())
        close = f"; {c['too_close']} too close" if c.get("too_close") else ""
        parts.append(f"{name + ': ' if name else ''}CN {cn}{close}")
    return html.escape(" | ".join(parts)) or "–"


def _page(out: dict, figures: list, views: list) -> str:
    """A self-contained HTML page: the triage, the verdict, the ranked table with energies and chemistry, the top
    fits (images inline) and a 3D view of the top structures."""
    from scatterfit.report.viewer3d import structure_views

    rows = "".join(
        f"<tr><td>{h['rank']}</td><td>{html.escape(h['class'])}</td><td>{html.escape(h['label'])}</td>"
        f"<td>{', '.join(f'{v:.4f}' for v in h['rw'].values())}</td><td>{h['n_parameters']}</td>"
        f"<td>{h['delta_bic']:.1f}</td><td>{h.get('energy_penalty', 0.0):.1f}</td><td>{h['weight']:.3f}</td>"
        f"<td>{_energy_cell(h)}</td>"
        f"<td>{_checks_cell(h)}</td></tr>" for h in out["hypotheses"])
    verdict = out["verdict"]
    lines = [f"Best: <b>{html.escape(str(verdict.get('best')))}</b>"]
    if not verdict.get("fits", True):
        lines.append(f"<b>no fit</b> (evidence: {html.escape(verdict['evidence'])})")
    if "runner_up" in verdict:
        lines.append(f"runner-up {html.escape(verdict['runner_up'])} at ΔBIC {verdict['delta_bic']:.1f} "
                     f"(evidence: {verdict['evidence']})")
    if verdict.get("decided_by"):
        lines.append(f"decided by {html.escape(verdict['decided_by'])}")
    if verdict.get("caution"):
        lines.append(f"caution: {html.escape(verdict['caution'])}")
    if verdict.get("stability"):
        lines.append(f"<b>physically {html.escape(verdict['stability'])}</b>")
    if verdict.get("next_measurement"):
        lines.append(f"to tell them apart: {html.escape(verdict['next_measurement'])}")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in out["triage"]["reasons"] + out.get("notes", []))
    failed = "".join(f"<li>{html.escape(f['class'])} {html.escape(f['label'])}: {html.escape(str(f['error']))}</li>"
                     for f in out["failed"])
    failed = f"<h2>Rejected</h2><ul>{failed}</ul>" if failed else ""
    bragg = out["triage"].get("kind") == "xrd"

    def factors(row: dict) -> str:
        return " / ".join(f"{f:.3f}" for f in row.get("cell_factors", [row["cell_factor"]]))

    screen = "".join(f"<tr><td>{html.escape(row['label'])}</td><td>{row['rw']:.3f}</td>"
                     f"<td>{factors(row)}</td><td>{'refined' if row['kept'] else ''}</td></tr>"
                     for row in out.get("screen", [])[:SCREENED])
    if screen:
        against = ("the Bragg peaks (R: the sine of the angle between the model's and the data's peak signals)"
                   if bragg else "the short-range PDF")
        screen = (f"<h2>Library screen</h2><p>The best {min(SCREENED, len(out['screen']))} of "
                  f"{len(out['screen'])} structure types against {against}.</p><table><tr><th>type</th>"
                  f"<th>{'R' if bragg else 'Rw'}</th><th>cell factor{' (a / b / c)' if bragg else ''}</th><th></th>"
                  f"</tr>{screen}</table>")
    images = "".join(f"<figure>{_png_tag(p)}<figcaption>#{k} {html.escape(label)}</figcaption></figure>"
                     for k, label, p in figures[:3])
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>scatterfit solve: {html.escape(
        out['composition'])}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}img{{max-width:100%}}
.sf-figure{{display:inline-block;margin:4px}}canvas{{border:1px solid #ddd;cursor:grab}}</style></head>
<body><h1>scatterfit solve: {html.escape(out['composition'])}</h1>
<h2>Triage</h2><ul>{reasons}</ul><h2>Verdict</h2><p>{'<br>'.join(lines)}</p>
<h2>Hypotheses</h2><table><tr><th>rank</th><th>class</th><th>hypothesis</th><th>Rw</th><th>parameters</th>
<th>ΔBIC (with the energy's prior)</th><th>energy's prior, −2 ln</th>
<th>weight</th><th>energy, eV/atom (above best of formula)</th><th>chemistry</th></tr>{rows}</table>
{failed}{screen}<h2>Best fits</h2>{images}<h2>Top structures</h2>{structure_views(views)}</body></html>
"""
