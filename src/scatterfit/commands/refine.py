"""`scatterfit refine CONFIG.toml`: build the API objects a config describes, refine, write the results."""

from __future__ import annotations

import time
from pathlib import Path

from scatterfit.config import Config, load_config
from scatterfit.errors import ScatterfitError


def build_structure(cfg: Config):
    from scatterfit.datasets import cmi_example
    from scatterfit.structure import Structure

    sec = cfg.structure
    if "file" in sec:
        path = cfg.resolve(sec["file"])
        if not path.is_file():
            raise ScatterfitError(f"{cfg.path}: [structure].file: {path} not found")
        s = Structure.from_file(path)
    elif "cmi" in sec:
        s = Structure.from_file(cmi_example(sec["cmi"]))
    elif "amorphous" in sec or "molecule" in sec:
        from scatterfit.structure.builders import amorphous_box, random_molecule

        key = "amorphous" if "amorphous" in sec else "molecule"
        try:
            s = (amorphous_box if key == "amorphous" else random_molecule)(**sec[key])
        except TypeError as exc:
            raise ScatterfitError(f"{cfg.path}: [structure].{key}: {exc}") from None
    else:
        from ase.build import bulk

        try:
            s = Structure.from_ase(bulk(**sec["bulk"]))
        except (TypeError, ValueError, KeyError) as exc:
            raise ScatterfitError(f"{cfg.path}: [structure].bulk: {exc}") from None
    if "uiso" in sec:
        s = s.with_uiso(sec["uiso"])
    return s


def build_datasets(cfg: Config) -> dict:
    from scatterfit.datasets import cmi_example
    from scatterfit.io import load_dataset

    out = {}
    for k, d in enumerate(cfg.datasets):
        if "file" in d:
            path = cfg.resolve(d["file"])
            if not path.is_file():
                raise ScatterfitError(f"{cfg.path}: [[datasets]][{k}].file: {path} not found")
        else:
            path = cmi_example(d["cmi"])
        overrides = {key: d[key] for key in ("kind", "radiation", "x_unit") if key in d}
        out[d["name"]] = load_dataset(path, **overrides)
    return out


def build_loss(cfg: Config, datasets: dict):
    from scatterfit.loss import DataTerm, Loss
    from scatterfit.models import DebyeModel, PDFModel

    terms = []
    for k, t in enumerate(cfg.terms):
        if t.get("kind", "data") != "data":
            terms.append(build_chemistry_term(cfg, k, t))
            continue
        data = datasets[t["dataset"]]
        model = t.get("model", "pdf")
        if model == "pdf":
            qmax = float(t.get("qmax", data.metadata.get("qmax", 0.0) or 0.0))
            fwd = PDFModel(qmax=qmax, radiation=data.radiation, ripple=t.get("ripple", "pdffit2"))
        elif model == "debye":
            fwd = DebyeModel(kind=t.get("debye_kind", data.kind), radiation=data.radiation,
                             qmin=float(t.get("qmin", data.metadata.get("qmin", 0.5))),
                             qmax=float(t.get("qmax", data.metadata.get("qmax", 25.0))))
        elif model in ("box", "box-interference"):
            from scatterfit.models import BoxScatteringModel

            fwd = BoxScatteringModel(kind=data.kind, radiation=data.radiation, q_weighted=model == "box")
        else:
            raise ScatterfitError(f"{cfg.path}: [[terms]][{k}].model: unknown model '{model}' (use pdf, debye, box or box-interference)")
        terms.append(DataTerm(fwd, data, metric=t.get("metric", "rw"), xmin=t.get("xmin"), xmax=t.get("xmax"),
                              fit_scale=t.get("fit_scale", True), weight=t.get("weight", 1.0),
                              name=t.get("name", t["dataset"])))
    return Loss(terms)


def build_chemistry_term(cfg: Config, k: int, t: dict):
    """An EnergyTerm or a restraint from a [[terms]] table of kind "energy" or "restraint"."""
    from scatterfit.constraints import RESTRAINTS
    from scatterfit.energy.registry import make_potential
    from scatterfit.loss import EnergyTerm

    where = f"{cfg.path}: [[terms]][{k}]"
    allowed = {"energy": {"kind", "name", "potential", "args", "weight", "reference"},
               "restraint": {"kind", "name", "restraint", "args", "weight"}}[t["kind"]]
    extra = sorted(set(t) - allowed)
    if extra:
        raise ScatterfitError(f"{where}: key(s) {extra} do not apply to a {t['kind']} term")
    args = dict(t.get("args", {}))
    try:
        if t["kind"] == "energy":
            model = make_potential(t.get("potential", "chgnet"), **args)
            return EnergyTerm(model, weight=t.get("weight", 1.0), reference=t.get("reference", 0.0),
                              name=t.get("name", "energy"))
        name = t["restraint"]
        if name not in RESTRAINTS:
            raise ScatterfitError(f"unknown restraint '{name}' (known: {', '.join(RESTRAINTS)})")
        extra_name = {"name": t["name"]} if "name" in t else {}
        try:
            return RESTRAINTS[name](**args, weight=t.get("weight", 1.0), **extra_name)
        except TypeError as exc:
            raise ScatterfitError(f"restraint '{name}': bad arguments ({exc})") from None
    except ScatterfitError as exc:
        raise ScatterfitError(f"{where}: {exc}") from None


def chemistry_options(cfg: Config, loss) -> dict:
    """Bond cutoffs and oxidation states for the chemistry report: [output] first, then any bond-valence term."""
    from scatterfit.constraints import BondValence

    options = {"cutoffs": cfg.output.get("bond_cutoffs"), "oxidation": cfg.output.get("oxidation")}
    if options["oxidation"] is None:
        for term in loss.terms:
            restraint = getattr(term, "restraint", None)
            if isinstance(restraint, BondValence):
                from ase.data import chemical_symbols

                options["oxidation"] = {chemical_symbols[z]: v for z, v in restraint.oxidation.items()}
    return options


def build_parametrisation(cfg: Config, structure):
    from scatterfit.structure.parametrisation import Parametrisation

    p = cfg.parameters
    bounds = {}
    for key, value in p.get("bounds", {}).items():
        if key == "positions" and isinstance(value, (int, float)):
            bounds[key] = float(value)
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            bounds[key] = (float(value[0]), float(value[1]))
        else:
            raise ScatterfitError(f"{cfg.path}: [parameters].bounds.{key}: must be [lo, hi]")
    for key, value in p.get("values", {}).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ScatterfitError(f"{cfg.path}: [parameters].values.{key}: must be a number")
    try:
        return Parametrisation(structure, free=p["free"], values=p.get("values"), bounds=bounds)
    except ScatterfitError as exc:
        raise ScatterfitError(f"{cfg.path}: [parameters]: {exc}") from None


def build_strategy(cfg: Config):
    from scatterfit.optim import Stage, pdf_range_ramp

    if not cfg.strategy:
        return pdf_range_ramp()
    stages = []
    for k, st in enumerate(cfg.strategy):
        try:
            stages.append(Stage(**st))
        except ScatterfitError as exc:
            raise ScatterfitError(f"{cfg.path}: [[strategy]][{k}]: {exc}") from None
    return stages


def resolve_device(device: str | None):
    """A torch device from a user's string, checked: None → CPU; an unknown or absent device → one clear line."""
    import torch

    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ScatterfitError(f"unknown device '{device}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ScatterfitError(f"device '{device}' requested but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise ScatterfitError(f"device '{device}' is not supported (use cpu or cuda)")
    return dev


def run_refine(config_path, out=None, resume: bool = False, device: str | None = None):
    from scatterfit.optim import refine

    cfg = load_config(config_path)
    dev = resolve_device(device)
    if cfg.search:
        from scatterfit.commands.search import run_search

        if dev.type != "cpu":
            raise ScatterfitError("--device applies to refinements; a [search] runs its candidates on the CPU")
        return run_search(cfg, out=out, resume=resume)
    structure = build_structure(cfg).to(dev)
    datasets = build_datasets(cfg)
    loss = build_loss(cfg, datasets)
    param = build_parametrisation(cfg, structure)
    stages = build_strategy(cfg)
    out_dir = Path(out or cfg.output.get("dir", "out/" + Path(config_path).stem))
    t0 = time.perf_counter()
    result = refine(loss, param, stages, seed=cfg.output.get("seed", 0), checkpoint=out_dir / "checkpoint.pt",
                    checkpoint_every=cfg.output.get("checkpoint_every", 10), resume=resume)
    result.chemistry = chemistry_options(cfg, loss)
    result.write(out_dir)
    for name, tv in result.terms.items():
        if "rw" in tv.breakdown:
            print(f"Rw = {tv.breakdown['rw']:.4f}   [{name}, scale {tv.breakdown['scale']:.5g}]")
        elif "energy_per_atom_eV" in tv.breakdown:
            print(f"E = {tv.breakdown['energy_per_atom_eV']:.4f} eV/atom   [{name}, {tv.breakdown['potential']}]")
        else:
            print(f"penalty = {float(tv.value.detach()):.4g}   [{name}]")
    params = result.parameters()
    if "scale" not in param.free:
        params.pop("scale")
    shown = ", ".join(f"{k} = {v:.5g}" if isinstance(v, float) else f"{k} = {v}" for k, v in params.items()
                      if v is not None)
    print(shown)
    print(f"refinement time {time.perf_counter() - t0:.1f} s; results in {out_dir}/")
    return result
