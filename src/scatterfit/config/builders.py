"""Builders: the API objects a validated config describes (Structure, Datasets, Loss, Parametrisation, stages,
search candidates and evaluator). Every mistake is one ScatterfitError naming the config file and the key."""

from __future__ import annotations

from pathlib import Path

from scatterfit.config.schema import Config
from scatterfit.errors import ScatterfitError


def build_structure(cfg: Config, sec: dict | None = None, where: str = "[structure]"):
    """The Structure of [structure], or of ``sec`` (a [[phases]] table, named ``where`` in errors)."""
    from scatterfit.datasets import cmi_example
    from scatterfit.structure import Structure, read_structure

    sec = cfg.structure if sec is None else sec
    if "file" in sec:
        path = cfg.resolve(sec["file"])
        if not path.is_file():
            raise ScatterfitError(f"{cfg.path}: {where}.file: {path} not found")
        s = read_structure(path)
    elif "cmi" in sec:
        s = read_structure(cmi_example(sec["cmi"]))
    elif "amorphous" in sec or "molecule" in sec:
        from scatterfit.structure.builders import amorphous_box, random_molecule

        key = "amorphous" if "amorphous" in sec else "molecule"
        try:
            s = (amorphous_box if key == "amorphous" else random_molecule)(**sec[key])
        except TypeError as exc:
            raise ScatterfitError(f"{cfg.path}: {where}.{key}: {exc}") from None
    else:
        from ase.build import bulk

        try:
            s = Structure.from_ase(bulk(**sec["bulk"]))
        except (TypeError, ValueError, KeyError) as exc:
            raise ScatterfitError(f"{cfg.path}: {where}.bulk: {exc}") from None
    if "uiso" in sec:
        s = s.with_uiso(sec["uiso"])
    if "point_group" in sec:
        from scatterfit.structure.symmetry import with_point_group

        try:
            s = with_point_group(s, sec["point_group"])
        except ScatterfitError as exc:
            raise ScatterfitError(f"{cfg.path}: {where}.point_group: {exc}") from None
    if "subgroup" in sec:
        from scatterfit.structure.subgroup import lower_symmetry

        try:
            s = lower_symmetry(s, sec["subgroup"])
        except ScatterfitError as exc:
            raise ScatterfitError(f"{cfg.path}: {where}.subgroup: {exc}") from None
    return s


def build_phases(cfg: Config) -> dict | None:
    """{phase name: Structure} of the [[phases]] tables, or None for a config with one [structure]."""
    if not cfg.phases:
        return None
    return {p["name"]: build_structure(cfg, p, f"[[phases]][{k}]") for k, p in enumerate(cfg.phases)}


def build_model_structure(cfg: Config, device=None):
    """What the parametrisation refines: the Structure of [structure], or {phase name: Structure} of
    [[phases]], on ``device``."""
    phases = build_phases(cfg)
    if phases is None:
        s = build_structure(cfg)
        return s if device is None else s.to(device)
    return {name: (s if device is None else s.to(device)) for name, s in phases.items()}


POWDER_SETTINGS = ("wavelength2", "ratio", "polarisation", "profile", "preferred_orientation", "bank_angle")
"""[[datasets]] keys that set up a powder diffractometer: kept apart in the dataset's metadata["powder"], so a
file header's key of the same name (a PDF header's "polarization") never reaches the powder model."""


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
        overrides = {key: d[key] for key in ("kind", "radiation", "x_unit", "qmax", "wavelength") if key in d}
        powder = {key: d[key] for key in POWDER_SETTINGS if key in d}  # read by the powder model only
        out[d["name"]] = load_dataset(path, **overrides, **({"powder": powder} if powder else {}))
    return out


def pdf_qmax(cfg: Config, k: int, t: dict, data, default: float | None = None) -> float:
    """Qmax of a pdf term: the term's qmax, else the data's (header or [[datasets]].qmax), else ``default`` (the
    command line's --qmax); a PDF with none of these is refused rather than fitted without termination ripples."""
    for value in (t.get("qmax"), data.metadata.get("qmax"), default):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    raise ScatterfitError(f"{cfg.path}: [[terms]][{k}]: {data.path} gives no Qmax in its header; set qmax in this "
                          "term or in its [[datasets]] table (or --qmax; qmax = 0 fits without termination ripples)")


def build_loss(cfg: Config, datasets: dict, qmax: float | None = None):
    """The Loss of the config's [[terms]]; ``qmax`` (Å⁻¹) is the command line's default for PDFs whose file and
    config give none."""
    from scatterfit.loss import DataTerm, Loss
    from scatterfit.scattering.models import make_forward_model

    terms = []
    for k, t in enumerate(cfg.terms):
        if t.get("kind", "data") != "data":
            terms.append(build_chemistry_term(cfg, k, t))
            continue
        data = datasets[t["dataset"]]
        model = t.get("model", {"gr": "pdf", "xrd": "powder"}.get(data.kind, "debye"))
        options = {key: t[key] for key in ("qmax", "qmin", "ripple", "debye_kind", "shape") if key in t}
        if model == "pdf":
            options["qmax"] = pdf_qmax(cfg, k, t, data, qmax)
        try:
            if cfg.phases:  # one forward model per phase seen in this dataset, added by their fractions
                from scatterfit.scattering.mixture import PhaseMixture

                seen = t.get("phases", [p["name"] for p in cfg.phases])
                fwd = PhaseMixture({p: make_forward_model(model, data, **options) for p in seen},
                                   radiation=data.radiation)
            else:
                fwd = make_forward_model(model, data, **options)
        except ScatterfitError as exc:
            raise ScatterfitError(f"{cfg.path}: [[terms]][{k}].model: {exc}") from None
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


def build_parametrisation(cfg: Config, structure, loss=None):
    """The Parametrisation of [parameters] for ``structure`` (a Structure, or {phase: Structure} for [[phases]]:
    a MixtureParametrisation), with the instrument parameters the loss's forward models declare (a powder
    model's zero, U, V, W, ...). A free background without bounds reaches ±3 times the largest |y| of the data
    it is added to (at least ±100)."""
    from scatterfit.structure.parametrisation import Parametrisation
    from scatterfit.structure.phases import MixtureParametrisation

    p = cfg.parameters
    try:
        instrument = loss.declared_parameters(p.get("values", {})) if hasattr(loss, "declared_parameters") else {}
    except ScatterfitError as exc:
        raise ScatterfitError(f"{cfg.path}: [parameters].values: {exc}") from None
    bounds = {}
    for key, value in p.get("bounds", {}).items():
        if key in ("positions", "orbits") and isinstance(value, (int, float)):
            bounds[key] = float(value)
        elif key == "cell" and isinstance(value, dict):
            for name, pair in value.items():
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair)):
                    raise ScatterfitError(f"{cfg.path}: [parameters].bounds.cell.{name}: must be [lo, hi]")
            bounds[key] = {name: (float(pair[0]), float(pair[1])) for name, pair in value.items()}
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            bounds[key] = (float(value[0]), float(value[1]))
        else:
            raise ScatterfitError(f"{cfg.path}: [parameters].bounds.{key}: must be [lo, hi]")
    for key, value in p.get("values", {}).items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ScatterfitError(f"{cfg.path}: [parameters].values.{key}: must be a number")
    if "background" in p["free"] and "background" not in bounds and loss is not None:
        from scatterfit.structure.parametrisation import background_bounds

        bounds["background"] = background_bounds(t.dataset.y for t in loss.terms if hasattr(t, "dataset"))
    try:
        if isinstance(structure, dict):
            fractions = {ph["name"]: ph["fraction"] for ph in cfg.phases if "fraction" in ph}
            shells = {ph["name"]: ph["shell_of"] for ph in cfg.phases if "shell_of" in ph}
            return MixtureParametrisation(structure, free=p["free"], values=p.get("values"), bounds=bounds,
                                          instrument=instrument, fractions=fractions, shells=shells)
        return Parametrisation(structure, free=p["free"], values=p.get("values"), bounds=bounds,
                               instrument=instrument)
    except ScatterfitError as exc:
        raise ScatterfitError(f"{cfg.path}: [parameters]: {exc}") from None


def build_strategy(cfg: Config, loss=None, parametrisation=None):
    """The [[strategy]] stages, or the default r-range ramp: with Levenberg–Marquardt when ``loss`` and
    ``parametrisation`` are given and make a small least-squares problem (optim.stages.default_optimizer)."""
    from scatterfit.optim import Stage, pdf_range_ramp
    from scatterfit.optim.stages import default_optimizer

    if not cfg.strategy:
        optimizer = "lbfgs" if loss is None else default_optimizer(loss, parametrisation)
        return pdf_range_ramp(cfg.parameters["free"], optimizer)
    stages = []
    for k, st in enumerate(cfg.strategy):
        try:
            stages.append(Stage(**st))
        except ScatterfitError as exc:
            raise ScatterfitError(f"{cfg.path}: [[strategy]][{k}]: {exc}") from None
    return stages


def fingerprint(cfg: Config, *extra) -> str:
    """SHA-256 of what determines a run: the config file's bytes, every data and structure file it reads, and
    ``extra`` (command-line settings). A checkpoint stores it, and a resume with another fingerprint is refused."""
    import hashlib

    from scatterfit.datasets import cmi_example

    h = hashlib.sha256(cfg.path.read_bytes())
    files = [cfg.resolve(d["file"]) if "file" in d else cmi_example(d["cmi"]) for d in cfg.datasets]
    for sec in (cfg.structure, *cfg.phases):
        if "file" in sec:
            files.append(cfg.resolve(sec["file"]))
    for f in files:
        h.update(str(f.name).encode())
        if Path(f).is_file():
            h.update(Path(f).read_bytes())
    h.update(repr(extra).encode())
    return h.hexdigest()


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


def build_candidates(cfg: Config):
    from scatterfit.structure.candidates import (
        AmorphousCandidates,
        CrystalParticleCandidates,
        MoleculeCandidates,
        ParticleCandidates,
        StackedParticleCandidates,
        SymmetricMoleculeCandidates,
    )

    sec = cfg.search
    kind = sec["builder"]
    classes = {"nanoparticle": ParticleCandidates, "amorphous": AmorphousCandidates, "molecule": MoleculeCandidates,
               "symmetric_molecule": SymmetricMoleculeCandidates, "crystal_particle": CrystalParticleCandidates,
               "stacked_particle": StackedParticleCandidates}
    args = dict(sec.get("builder_args", {}))
    if kind == "stacked_particle":
        args.setdefault("seed", int(sec.get("seed", 0)))
    if kind in ("crystal_particle", "stacked_particle") and isinstance(args.get("cmi"), str):
        from scatterfit.datasets import cmi_example

        args["file"] = str(cmi_example(args.pop("cmi")))
    elif kind in ("crystal_particle", "stacked_particle") and isinstance(args.get("file"), str):
        path = cfg.resolve(args["file"])
        if not path.is_file():
            raise ScatterfitError(f"{cfg.path}: [search].builder_args.file: {path} not found")
        args["file"] = str(path)
    try:
        return classes[kind](**args)
    except TypeError as exc:
        raise ScatterfitError(f"{cfg.path}: [search].builder_args: {exc}") from None


def build_evaluator(cfg: Config, qmax: float | None = None):
    """The config's (CandidateEvaluator, SearchSpace, loss, final stages): what run_search and landscape
    scripts share."""
    from scatterfit.optim import Stage
    from scatterfit.optim.search import CandidateEvaluator
    from scatterfit.optim.space import SearchSpace

    sec = cfg.search
    datasets = build_datasets(cfg)
    loss = build_loss(cfg, datasets, qmax)
    candidates = build_candidates(cfg)
    try:
        space = SearchSpace.from_config(sec["variables"])
    except ScatterfitError as exc:
        raise ScatterfitError(f"{cfg.path}: [search].variables: {exc}") from None
    p = cfg.parameters
    inner_free = sec.get("inner_free", p["free"])
    inner = [Stage("lbfgs", free=inner_free, steps=int(sec.get("inner_steps", 5)), tol=1e-4, patience=1)]
    final = build_strategy(cfg) if cfg.strategy else [Stage("lbfgs", free=p["free"], steps=100)]
    evaluator = CandidateEvaluator(candidates, loss, free=list(dict.fromkeys([*inner_free, *p["free"]])),
                                   stages=inner,
                                   values=dict(p.get("values", {})), seed=int(sec.get("seed", 0)))
    return evaluator, space, loss, final
