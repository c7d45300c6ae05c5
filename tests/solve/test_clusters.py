"""Cluster hypotheses of solve: the guessed oxidation states and restraints, the point groups a formula fits, a
point group attached to a finite structure read from a file (the replay of a symmetric cluster), and a small
molecule solved blind from its simulated G(r)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from scatterfit.errors import ScatterfitError
from scatterfit.io import Dataset
from scatterfit.solve.clusters import cluster_counts, cluster_restraints, placeable_groups
from scatterfit.solve.ionic import oxidation_states


def test_oxidation_states_from_the_formula():
    assert oxidation_states({"W": 12, "O": 40}) == {"O": -2, "W": 6}  # an oxo-anion: W(VI), the rest is its charge
    assert oxidation_states({"Fe": 3, "O": 4}) == {"O": -2, "Fe": 3}
    assert oxidation_states({"Ti": 1, "O": 2}) == {"O": -2, "Ti": 4}
    assert oxidation_states({"Si": 1, "Cl": 4}) == {"Cl": -1, "Si": 4}
    assert oxidation_states({"C": 60}) is None  # no anion: not ionic
    assert oxidation_states({"O": 2}) is None


def test_restraints_of_an_ionic_and_a_covalent_cluster():
    ionic = cluster_restraints({"W": 12, "O": 40}, 1.9)
    assert ionic["bond_valence"] == {"oxidation": {"O": -2, "W": 6}}
    cores = ionic["min_distance"]["distances"]
    assert cores["W-O"] == pytest.approx(0.85 * 1.9, abs=1e-3) and cores["O-O"] > cores["W-O"]
    assert set(cluster_restraints({"C": 60}, 1.42)) == {"min_distance"}


def test_cluster_counts_need_a_finite_formula():
    assert cluster_counts("W12O40") == {"W": 12, "O": 40}
    assert cluster_counts("C60") == {"C": 60}
    assert cluster_counts("La0.5Ba0.5CoO3") is None
    assert cluster_counts("Pt") is None  # one atom
    assert cluster_counts("Au1000") is None  # a nanoparticle's size: cut from crystals, not searched


def test_placeable_groups():
    c60 = placeable_groups({"C": 60})
    assert {"I", "Ih", "T", "C1"} <= set(c60)
    keggin = placeable_groups({"W": 12, "O": 40})
    assert {"T", "Td", "Th", "I"} <= set(keggin)  # in I: 12 W on the five-fold axes, 40 O = 20 + 20 on the three-fold
    tetrahedral = placeable_groups({"Si": 1, "Cl": 4})  # Si at the centre, four Cl: no orbit of 4 in O, Oh, I, Ih
    assert "Td" in tetrahedral and not {"O", "Oh", "I", "Ih"} & set(tetrahedral)


def test_point_group_of_a_finite_structure_read_back(tmp_path):
    """A symmetric cluster written as extxyz and read back with its point group named refines its orbits (the
    replay of a cluster hypothesis); a group it does not have is refused in one line."""
    from scatterfit.config import load_config
    from scatterfit.config.builders import build_parametrisation, build_structure
    from scatterfit.structure.builders import random_symmetric_molecule
    from scatterfit.structure.files import structure_suffix, write_structure

    s = random_symmetric_molecule("Si1Cl4", "Td", min_dist=1.5, density=0.05, seed=3)
    assert structure_suffix(s) == ".extxyz"
    write_structure(s, tmp_path / "c.extxyz")
    for group, ok in (("Td", True), ("Oh", False)):
        cfg_path = tmp_path / f"{group}.toml"
        cfg_path.write_text(f'[structure]\nfile = "c.extxyz"\npoint_group = "{group}"\n[parameters]\n'
                            'free = ["orbits"]\n[[datasets]]\nname = "d"\nfile = "d.gr"\n[[terms]]\ndataset = "d"\n')
        cfg = load_config(cfg_path)
        if ok:
            read = build_structure(cfg)
            assert read.symmetry.group == "Td"
            np.testing.assert_allclose(read.positions.numpy(), s.positions.numpy(), atol=1e-6)
            param = build_parametrisation(cfg, read)
            assert sorted(read.symmetry.sizes) == [1, 4]  # Si at the centre, the Cl on one orbit
            assert param.initial_vector().numel() == 3 * 2  # a displacement per orbit representative
        else:
            with pytest.raises(ScatterfitError, match=r"Oh\.toml: \[structure\]\.point_group: .*not symmetric"):
                build_structure(cfg)


def _molecule_gr(name: str, seed: int, qmin: float = 0.7, header_qmin: bool = True):
    """The X-ray G(r) (Debye, Q ``qmin``–20 Å⁻¹, Uiso 0.005 Å², qdamp 0.02 Å⁻¹) of an ASE (g2) molecule with noise
    of 1 % of its largest value (Qmin in its metadata if ``header_qmin``), and the noise's own Rw over the range a
    hypothesis is refined on (1.5–20 Å)."""
    from ase.build import molecule

    from scatterfit.scattering.models import DebyeModel
    from scatterfit.structure import Structure

    s = Structure.from_ase(molecule(name)).with_uiso(0.005)
    r = torch.arange(0.5, 20.0, 0.01, dtype=torch.float64)

    class State:
        structure, params = s, {"qdamp": torch.tensor(0.02, dtype=torch.float64)}

    g = DebyeModel(kind="gr", qmin=qmin, qmax=20.0)(State, r).numpy()
    noise = 0.01 * np.abs(g).max() * np.random.default_rng(seed).standard_normal(len(g))
    fitted = r.numpy() >= 1.5
    noise_rw = float(np.sqrt(np.sum(noise[fitted] ** 2) / np.sum((g + noise)[fitted] ** 2)))
    metadata = {"qmax": 20.0, **({"qmin": qmin} if header_qmin else {})}
    return Dataset(r.numpy(), g + noise, None, "gr", "angstrom", metadata=metadata), noise_rw


def test_a_molecule_solved_blind_as_a_cluster(tmp_path, monkeypatch):
    """SiCl4 (Td; ASE's g2 geometry, not the search's builder) from its simulated G(r) and its formula: the
    triage says cluster, the symmetric search (a small budget and few hops here) finds the tetrahedron (Si–Cl
    within 0.02 Å of the truth's), the cluster ranks first at the noise's Rw, and its written config replays to the
    same Rw."""
    from ase.build import molecule

    from scatterfit.report.solution import write_solution
    from scatterfit.solve import clusters
    from scatterfit.solve.solve import solve

    monkeypatch.setattr(clusters, "SEARCH_BUDGET", 32)
    monkeypatch.setattr(clusters, "BASIN_HOPS", 10)
    data, noise_rw = _molecule_gr("SiCl4", 0)
    solution = solve({"sim": data}, "SiCl4", potential=None)
    assert solution.triage.classes[0] == "cluster"
    best = solution.ranked[0]["hypothesis"]
    assert best.kind == "cluster", [(r["hypothesis"].label, r["hypothesis"].rw) for r in solution.ranked[:4]]
    s = best.result.structure
    d = torch.cdist(s.positions, s.positions)
    si = int((s.numbers == 14).nonzero()[0])
    truth = molecule("SiCl4").get_distance(0, 1)
    bonds = np.sort(d[si][s.numbers == 17].numpy())
    np.testing.assert_allclose(bonds, truth, atol=0.02)
    assert best.rw["sim"] < 1.05 * noise_rw, (best.rw, noise_rw)
    path = tmp_path / "sim.gr"
    np.savetxt(path, np.column_stack([data.x, data.y]), header="qmax = 20\nqmin = 0.7\n#### start data\n#L r G",
               comments="")
    (tmp_path / "out").mkdir()
    out = write_solution(solution, tmp_path / "out", {"sim": path})
    first = out["hypotheses"][0]
    assert first["class"] == "cluster" and first["n_atoms"] == 5
    replay = subprocess.run([sys.executable, "-m", "scatterfit", "refine", str(tmp_path / "out" / first["config"]),
                             "--out", str(tmp_path / "replay")], capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    replayed = json.loads((tmp_path / "replay" / "summary.json").read_text())
    assert replayed["terms"]["sim"]["rw"] == pytest.approx(first["rw"]["sim"], abs=1e-4)


def test_a_cluster_refines_where_its_transform_started_when_the_file_does_not_say(monkeypatch):
    """A G(r) transformed from Qmin 1.0 Å⁻¹ in a file without a header (the measured Keggin's case: with the
    default 0.5 its symmetric cluster fitted at Rw 0.31, at 0.155 with the data's 0.7–0.8): the cluster's Debye
    model refines qmin (scattering/models.DebyeModel.parameters), finds 1.0 and fits to the noise; given with
    ``qmin`` (solve --qmin) it is held and written into the data's metadata."""
    from scatterfit.solve import clusters
    from scatterfit.solve.solve import _with_qmin, solve

    monkeypatch.setattr(clusters, "SEARCH_BUDGET", 32)
    monkeypatch.setattr(clusters, "BASIN_HOPS", 10)
    data, noise_rw = _molecule_gr("SiCl4", 0, qmin=1.0, header_qmin=False)
    assert clusters._transform({"sim": data}) == ["qmin"]
    solution = solve({"sim": data}, "SiCl4", potential=None)
    best = solution.ranked[0]["hypothesis"]
    assert best.kind == "cluster" and "qmin" in best.free, (best.label, best.free)
    assert best.result.parameters()["qmin"] == pytest.approx(1.0, abs=0.03)
    assert best.rw["sim"] < 1.05 * noise_rw, (best.rw, noise_rw)

    given = _with_qmin({"sim": data}, 1.0, None)
    assert given["sim"].metadata["qmin"] == 1.0 and clusters._transform(given) == []
    with pytest.raises(ScatterfitError, match="qmin must be a number from 0 to below Qmax"):
        _with_qmin({"sim": data}, 25.0, None)
    with pytest.raises(ScatterfitError, match="qmin must be"):
        _with_qmin({"sim": data}, -0.1, None)


def test_a_molecule_solved_blind_from_its_intensity(tmp_path, monkeypatch):
    """SiCl4's X-ray intensity I(Q) (Debye, Q 1–20 Å⁻¹, arbitrary scale, a smooth background as solvent would
    add, 1 % noise) and its formula: only clusters are tried, the tetrahedron is found (Si–Cl within 0.02 Å of
    the truth's) and its config replays to the same Rw; an I(Q) with elements only is refused in one line."""
    from ase.build import molecule

    from scatterfit.report.solution import write_solution
    from scatterfit.scattering.models import DebyeModel
    from scatterfit.solve import clusters
    from scatterfit.solve.solve import solve
    from scatterfit.structure import Structure

    monkeypatch.setattr(clusters, "SEARCH_BUDGET", 32)
    monkeypatch.setattr(clusters, "BASIN_HOPS", 10)
    s = Structure.from_ase(molecule("SiCl4")).with_uiso(0.005)
    q = torch.arange(1.0, 20.0, 0.02, dtype=torch.float64)

    class State:
        structure, params = s, {"qdamp": torch.tensor(0.03, dtype=torch.float64)}

    i = DebyeModel(kind="iq")(State, q).numpy()
    x = q.numpy()
    i = 3.0 * i + 400.0 * np.exp(-x / 6.0) + 50.0
    i = i + 0.01 * i.max() * np.random.default_rng(1).standard_normal(len(i))
    data = Dataset(x, i, None, "iq", "inv_angstrom")
    with pytest.raises(ScatterfitError, match="give its formula"):
        solve({"sim": data}, "Si Cl", potential=None)
    solution = solve({"sim": data}, "SiCl4", potential=None)
    assert solution.triage.classes == ["cluster"]
    best = solution.ranked[0]["hypothesis"]
    assert best.kind == "cluster"
    st = best.result.structure
    d = torch.cdist(st.positions, st.positions)
    si = int((st.numbers == 14).nonzero()[0])
    np.testing.assert_allclose(np.sort(d[si][st.numbers == 17].numpy()), molecule("SiCl4").get_distance(0, 1),
                               atol=0.02)
    path = tmp_path / "sim.iq"
    np.savetxt(path, np.column_stack([x, i]))
    (tmp_path / "out").mkdir()
    out = write_solution(solution, tmp_path / "out", {"sim": path})
    first = out["hypotheses"][0]
    replay = subprocess.run([sys.executable, "-m", "scatterfit", "refine", str(tmp_path / "out" / first["config"]),
                             "--out", str(tmp_path / "replay")], capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr
    replayed = json.loads((tmp_path / "replay" / "summary.json").read_text())
    assert replayed["terms"]["sim"]["rw"] == pytest.approx(first["rw"]["sim"], abs=1e-4)


def _connectivity(structure, cation: int, anion: int, cutoff: float):
    """(cations' anion-neighbour counts, anions' cation-neighbour counts), as bincounts, within ``cutoff`` Å."""
    d = torch.cdist(structure.positions, structure.positions).detach().numpy()
    z = structure.numbers.numpy()
    c, a = z == cation, z == anion
    return np.bincount((d[c][:, a] < cutoff).sum(1)), np.bincount((d[a][:, c] < cutoff).sum(1))


@pytest.mark.slow  # about 6 minutes (the solve: 352 s beside another job)
def test_the_measured_keggin_is_solved_as_a_cluster_from_its_formula():
    """The α-Keggin's measured X-ray PDF (DanMAX) and the formula W12O40 (no heteroatom, no topology, no point
    group): a cluster first, with the α-Keggin connectivity (every W bound to six O within 2.45 Å; 12 terminal,
    24 bridging and 4 central O) and the W12 cage's two W–W distances (edge- and corner-sharing, 3.28 and 3.71 Å
    in the data), at an Rw within 10 % of the hand-written example's with its group kept (examples/keggin.toml,
    T kept: 0.301), and with every atom free within 10 % of the example's atoms-free 0.143."""
    from conftest import shared_file
    from scatterfit.io import load_dataset
    from scatterfit.solve.solve import solve

    data = load_dataset(shared_file("alpha_Keggin_W12O40_DanMAX_xray_PDF.gr"))
    solution = solve({"keggin": data}, "W12O40", qmax=20.0, potential=None)
    best = solution.ranked[0]["hypothesis"]
    assert best.kind == "cluster", [r["hypothesis"].label for r in solution.ranked[:3]]
    s = best.result.structure
    w_cn, o_cn = _connectivity(s, 74, 8, 2.45)
    assert list(w_cn) == [0, 0, 0, 0, 0, 0, 12] and list(o_cn) == [0, 12, 24, 4], (w_cn, o_cn)
    d = torch.cdist(s.positions, s.positions).detach().numpy()
    w = s.numbers.numpy() == 74
    ww = np.sort(d[w][:, w], 1)[:, 1:5]  # each W's four nearest W
    np.testing.assert_allclose(np.median(ww, 0), [3.28, 3.28, 3.71, 3.71], atol=0.05)
    assert best.rw["keggin"] <= 1.1 * 0.301
    # the file has no header: the transform's Qmin (the source's 0.7 Å⁻¹) is refined, and every atom free fits
    # within 10 % of the example's atoms-free Rw (0.143)
    assert 0.6 < best.result.parameters()["qmin"] < 0.9
    (free,) = [r["hypothesis"] for r in solution.ranked if r["hypothesis"].label.endswith("atoms free)")]
    assert free.rw["keggin"] <= 1.1 * 0.143, free.rw


@pytest.mark.slow  # about 5 minutes (the solve: 277 s beside two other jobs)
def test_c60_is_solved_from_its_intensity_and_formula():
    """C60.iq (diffpy.cmi; simulated by the diffpy team with unit form factors, a 7th-order polynomial background
    and Poisson noise) and the formula C60, `radiation unit`: a cluster first, a closed cage (every C bound to
    three C within 1.6 Å, 90 bonds) at an Rw within 10 % of the hand-written example's (examples/c60.toml:
    0.1238, with coordination restraints and the generator's background order)."""
    from scatterfit.datasets import cmi_example
    from scatterfit.io import load_dataset
    from scatterfit.solve.solve import solve

    data = load_dataset(cmi_example("core/intensityfit/C60.iq"), radiation="unit")
    solution = solve({"c60": data}, "C60", potential=None)
    best = solution.ranked[0]["hypothesis"]
    assert best.kind == "cluster"
    s = best.result.structure
    d = torch.cdist(s.positions, s.positions).detach().numpy()
    np.fill_diagonal(d, np.inf)
    bonded = d < 1.6
    assert (bonded.sum(1) == 3).all() and bonded.sum() == 180
    assert best.rw["c60"] <= 1.1 * 0.1238
