"""Several phases refined together: one Parametrisation per phase, the parameters the phases share, and the
phases' atom fractions.

Parameter names: a phase's group is "<phase>.<group>" ("Si.lattice", "Ni.biso", "Ni.delta2"); a plain phase group
("lattice") means that group of every phase. The groups a dataset owns are shared by all phases: "scale",
"qdamp", "qbroad", "background" and a forward model's instrument parameters (a powder model's zero, U, V, W...).
"fraction" refines the atom fractions c_p (Σ c_p = 1, by stick breaking: n − 1 numbers u_k ∈ (0, 1),
c_k = u_k Π_{j<k}(1 − u_j), the last phase the rest), which each data term turns into its own phase weights
(scattering/mixture.py), so one set of fractions serves joint X-ray, neutron, PDF and Bragg data.

A core–shell particle (``shells``: {shell phase: core phase}): the core phase lies in a spherical envelope of
diameter "<core>.spdiameter", the shell phase in a spherical shell around it, its hollow the core's diameter
(tied: the shell has no spdiameter of its own) and its wall "<shell>.shell_thickness" thick
(scattering/instrument.shape_envelope_shell). As in diffpy.srfit's core–shell recipe, the pairs between core and
shell are left out: each phase's G(r) is its crystal's inside its own envelope, and the fractions stay free.
"""

from __future__ import annotations

import math

import torch

from scatterfit.errors import ScatterfitError
from scatterfit.structure.parametrisation import Parametrisation, State, to_bounded, to_unbounded
from scatterfit.structure.structure import Structure

PHASE_GROUPS = ("lattice", "cell", "fractional", "positions", "orbits", "expansion", "biso", "uaniso", "occupancy",
                "delta1", "delta2", "spdiameter", "shell_thickness")
"""Groups that belong to a phase (PDFgui's phase parameters); every other group belongs to the datasets."""
PHASE_SCALARS = ("delta1", "delta2", "spdiameter", "shell_thickness")


def _split(name: str, phases) -> tuple[str | None, str]:
    """("Si", "lattice") for "Si.lattice", (None, "qdamp") for a plain name."""
    if "." in name:
        phase, group = name.split(".", 1)
        if phase not in phases:
            raise ScatterfitError(f"'{name}' names no phase '{phase}' (phases: {', '.join(phases)})")
        if group not in PHASE_GROUPS:
            raise ScatterfitError(f"'{name}': '{group}' is not a phase parameter (phase parameters: "
                                  f"{', '.join(PHASE_GROUPS)})")
        return phase, group
    return None, name


def mean_atomic_mass(structure: Structure) -> torch.Tensor:
    """Σ occ_i m_i / Σ occ_i, atomic mass units (0-d)."""
    from ase.data import atomic_masses

    m = torch.as_tensor(atomic_masses[structure.numbers.cpu().numpy()], dtype=structure.dtype,
                        device=structure.device)
    return (structure.occupancy * m).sum() / structure.occupancy.sum()


def stick_breaking(u: torch.Tensor) -> torch.Tensor:
    """[n] fractions summing to one from [n − 1] numbers in (0, 1)."""
    rest = torch.cumprod(torch.cat([torch.ones_like(u[:1]), 1 - u]), 0)  # [n] what is left before phase k
    return torch.cat([u, torch.ones_like(u[:1])]) * rest


def inverse_stick_breaking(c) -> list[float]:
    """The n − 1 numbers u whose stick_breaking gives the fractions ``c`` (normalised first)."""
    total = float(sum(c))
    c = [float(x) / total for x in c]
    u, left = [], 1.0
    for x in c[:-1]:
        u.append(min(max(x / left if left > 0 else 0.5, 1e-6), 1 - 1e-6))
        left -= x
    return u


class MixtureParametrisation:
    """θ ↔ State of several phases: ``state(θ).phases`` is {name: State} (each phase's structure, its delta1,
    delta2 and spdiameter, the shared dataset parameters and its atom fraction under params["fraction"]);
    ``state(θ).structure`` is the first phase's.

    Args:
        structures: {phase name: Structure}, in the order phases are reported.
        free: refined groups (see the module docstring); plain phase groups expand to every phase.
        values: starting or fixed values: "qdamp", "Ni.delta2", or "delta2" for every phase.
        bounds: {group: (lo, hi)}, by the same names.
        instrument: {name: (start, lo, hi)} the forward models' instrument parameters (shared).
        fractions: {phase: starting atom fraction} (normalised; default equal).
        shells: {shell phase: core phase} of core–shell particles (module docstring).
    """

    def __init__(self, structures: dict[str, Structure], free: list, values: dict | None = None,
                 bounds: dict | None = None, instrument: dict | None = None, fractions: dict | None = None,
                 shells: dict | None = None):
        if len(structures) < 2:
            raise ScatterfitError("a mixture needs at least two phases")
        for name in structures:
            if not name or "." in name or "[" in name:
                raise ScatterfitError(f"phase name '{name}' must be non-empty, without '.' or '['")
        self.names = list(structures)
        self.shells = self._check_shells(dict(shells or {}), free, values)
        phase_free = {p: [] for p in self.names}
        shared_free = []
        for g in self.expand(free):
            phase, group = _split(g, self.names)
            if phase in self.shells and group == "spdiameter":
                continue  # a plain "spdiameter": the shell's hollow is its core's
            (phase_free[phase] if phase else shared_free).append(group)
        phase_values, shared_values = self._route(values)
        phase_bounds, shared_bounds = self._route(bounds)
        for shell, core in self.shells.items():  # the shell's hollow starts at its core's diameter
            if "spdiameter" not in phase_free[core] and phase_values[core].get("spdiameter") is None:
                raise ScatterfitError(f"core phase '{core}': give '{core}.spdiameter' a value or refine it (the "
                                      f"core's diameter, the hollow of shell '{shell}')")
            phase_values[shell]["spdiameter"] = phase_values[core].get("spdiameter") or 50.0
            if "shell_thickness" not in phase_free[shell] and phase_values[shell].get("shell_thickness") is None:
                raise ScatterfitError(f"shell phase '{shell}': give '{shell}.shell_thickness' a value or refine it")
        self.fit_fraction = "fraction" in shared_free
        shared_free = [g for g in shared_free if g != "fraction"]
        for g in shared_free:
            if g in PHASE_GROUPS:  # pragma: no cover - expand() names every phase group
                raise ScatterfitError(f"'{g}' belongs to a phase")
        first = structures[self.names[0]]
        try:
            self.shared = Parametrisation(first, free=shared_free, values=shared_values, bounds=shared_bounds,
                                          instrument=instrument)
        except ScatterfitError as exc:
            raise ScatterfitError(f"shared parameters: {exc}") from None
        self.phases = {}
        for p in self.names:
            try:
                self.phases[p] = Parametrisation(structures[p], free=phase_free[p], values=phase_values[p],
                                                 bounds=phase_bounds[p])
            except ScatterfitError as exc:
                raise ScatterfitError(f"phase '{p}': {exc}") from None
        start = fractions or {}
        unknown = sorted(set(start) - set(self.names))
        if unknown:
            raise ScatterfitError(f"fractions of unknown phase(s) {unknown} (phases: {', '.join(self.names)})")
        c0 = [float(start.get(p, 1.0 / len(self.names))) for p in self.names]
        if any(not (x > 0) for x in c0):
            raise ScatterfitError(f"phase fractions must be > 0, got {dict(zip(self.names, c0))}")
        dt, dev = first.dtype, first.device
        self._fraction0 = torch.tensor(inverse_stick_breaking(c0), dtype=dt, device=dev)
        # θ layout: the shared groups, "fraction", then each phase's groups
        self.free = [*shared_free, *(["fraction"] if self.fit_fraction else []),
                     *(f"{p}.{g}" for p in self.names for g in self.phases[p].free)]
        self.shapes = {**{g: self.shared.shapes[g] for g in shared_free},
                       **({"fraction": (len(self.names) - 1,)} if self.fit_fraction else {}),
                       **{f"{p}.{g}": self.phases[p].shapes[g] for p in self.names for g in self.phases[p].free}}
        self.bounds = {**self.shared.bounds, "fraction": (0.0, 1.0),
                       **{f"{p}.{g}": b for p in self.names for g, b in self.phases[p].bounds.items()}}
        self.instrument_names = self.shared.instrument_names

    def _check_shells(self, shells: dict, free, values) -> dict:
        """``shells`` checked: phases of this mixture, each shell around a core that is no shell itself, and no
        spdiameter of a shell's own (its hollow is its core's)."""
        for shell, core in shells.items():
            for name in (shell, core):
                if name not in self.names:
                    raise ScatterfitError(f"core–shell: '{name}' names no phase (phases: {', '.join(self.names)})")
            if shell == core or core in shells:
                raise ScatterfitError(f"core–shell: phase '{shell}' must lie around a core phase that is no "
                                      f"shell itself (got '{core}')")
            if f"{shell}.spdiameter" in list(free) + list(values or {}):
                raise ScatterfitError(f"'{shell}.spdiameter': the shell's hollow is its core's diameter "
                                      f"('{core}.spdiameter'); refine '{shell}.shell_thickness' instead")
        return shells

    def _route(self, mapping: dict | None) -> tuple[dict, dict]:
        """({phase: {group: v}}, {name: v}) of values or bounds keyed "Ni.delta2", "delta2" (every phase) or
        "qdamp" (shared)."""
        per_phase, shared = {p: {} for p in self.names}, {}
        for key, v in (mapping or {}).items():
            phase, group = _split(key, self.names) if "." in key else (None, key)
            targets = [phase] if phase else (self.names if group in PHASE_GROUPS else [])
            for p in targets:
                per_phase[p][group] = v
            if not targets:
                shared[key] = v
        return per_phase, shared

    @property
    def structure(self) -> Structure:
        return self.phases[self.names[0]].structure

    def expand(self, groups) -> list:
        """Plain phase groups ("lattice") as that group of every phase ("Si.lattice", "Ni.lattice")."""
        out = []
        for g in groups:
            out.extend([f"{p}.{g}" for p in self.names] if g in PHASE_GROUPS else [g])
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ vector <-> values
    def _slices(self) -> dict:
        out, k = {}, 0
        for g in self.free:
            n = int(math.prod(self.shapes[g]))
            out[g] = slice(k, k + n)
            k += n
        return out

    def _parts(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
        """θ split into the shared part, the fraction part (or None) and each phase's part."""
        sl = self._slices()
        shared = [theta[sl[g]] for g in self.shared.free]
        empty = theta[:0]
        phase = {p: torch.cat([theta[sl[f"{p}.{g}"]] for g in self.phases[p].free]) if self.phases[p].free
                 else empty for p in self.names}
        fraction = theta[sl["fraction"]] if self.fit_fraction else None
        return torch.cat(shared) if shared else empty, fraction, phase

    def initial_vector(self) -> torch.Tensor:
        parts = [self.shared.initial_vector()]
        if self.fit_fraction:
            parts.append(to_unbounded(self._fraction0, 0.0, 1.0))
        parts += [self.phases[p].initial_vector() for p in self.names]
        return torch.cat(parts)

    def unpack(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        shared, fraction, phase = self._parts(theta)
        out = dict(self.shared.unpack(shared))
        if fraction is not None:
            out["fraction"] = to_bounded(fraction, 0.0, 1.0)
        for p in self.names:
            out.update({f"{p}.{g}": v for g, v in self.phases[p].unpack(phase[p]).items()})
        return out

    def group_slice(self, group: str) -> slice:
        sl = self._slices()
        if group not in sl:
            raise ScatterfitError(f"'{group}' is not a free parameter group")
        return sl[group]

    def with_values(self, theta: torch.Tensor, group: str, value: torch.Tensor) -> torch.Tensor:
        out = theta.detach().clone()
        out[self.group_slice(group)] = to_unbounded(value.detach(), *self.bounds[group]).reshape(-1)
        return out

    def fractions(self, theta: torch.Tensor) -> torch.Tensor:
        """[n] atom fractions of the phases at θ (sum 1)."""
        _, fraction, _ = self._parts(theta)
        if fraction is None:
            return stick_breaking(self._fraction0)
        return stick_breaking(to_bounded(fraction, 0.0, 1.0))

    def state(self, theta: torch.Tensor, overrides: dict | None = None) -> State:
        if overrides:
            raise ScatterfitError("a stage that moves atoms directly (anneal) works on one phase, not a mixture")
        shared_theta, _, phase_theta = self._parts(theta)
        shared = self.shared.state(shared_theta)
        c = self.fractions(theta)
        phases = {}
        for k, p in enumerate(self.names):
            st = self.phases[p].state(phase_theta[p])
            params = {**shared.params, **{key: st.params[key] for key in PHASE_SCALARS}, "scale": None,
                      "fraction": c[k]}
            phases[p] = State(st.structure, params)
        for shell, core in self.shells.items():
            phases[shell].params["spdiameter"] = phases[core].params["spdiameter"]
        return State(phases[self.names[0]].structure, shared.params, phases)

    def report(self, theta: torch.Tensor) -> dict:
        """Shared parameters by their names, each phase's as "<phase>.<name>", and the phases' atom fractions
        "fraction[<phase>]" and mass (weight) fractions "mass_fraction[<phase>]"."""
        shared_theta, _, phase_theta = self._parts(theta.detach())
        out = {k: v for k, v in self.shared.report(shared_theta).items() if k in self.shared.instrument_names
               or k in ("scale", "qdamp", "qbroad", "background")}
        c = self.fractions(theta.detach())
        out.update({f"fraction[{p}]": float(c[k]) for k, p in enumerate(self.names)})
        mass = c * torch.stack([mean_atomic_mass(self.phases[p].structure) for p in self.names]).to(c)
        out.update({f"mass_fraction[{p}]": float(mass[k] / mass.sum()) for k, p in enumerate(self.names)})
        for p in self.names:
            for k, v in self.phases[p].report(phase_theta[p]).items():
                if k in ("scale", "qdamp", "qbroad", "background") or k in self.shared.instrument_names:
                    continue
                out[f"{p}.{k}"] = v
        for shell, core in self.shells.items():
            out[f"{shell}.spdiameter"] = out.get(f"{core}.spdiameter")
        return out
