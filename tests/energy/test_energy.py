"""Energy models: references (analytic minima, published cohesive energies, Madelung constant, the wrapped
calculators' own energies and forces) and finite-difference gradient checks, periodic and finite."""


import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from scatterfit import ScatterfitError, Structure
from scatterfit.energy import (
    ASECalculatorEnergy,
    Buckingham,
    DSFCoulomb,
    LennardJones,
    Morse,
    StillingerWeber,
    Tersoff,
    XTBEnergy,
    batch_energies,
    bks_silica,
    default_potential,
    forces,
)
from scatterfit.energy.registry import make_potential
from scatterfit.testing import check_structure_gradients, random_box, random_cluster


def _rattled(atoms, amount=0.05, seed=0):
    atoms = atoms.copy()
    atoms.rattle(amount, seed=seed)
    return Structure.from_ase(atoms)


@pytest.fixture(scope="module")
def chgnet():
    return default_potential()


def test_lennard_jones_dimer_minimum_at_two_to_the_sixth_sigma():
    eps, sigma = 0.0103, 3.4
    lj = LennardJones({"Ar-Ar": {"epsilon": eps, "sigma": sigma}})
    r_min = 2 ** (1 / 6) * sigma
    r = torch.tensor(r_min, dtype=torch.float64, requires_grad=True)
    dimer = Structure(torch.stack([torch.zeros(3, dtype=torch.float64), torch.stack([r, r * 0, r * 0])]), [18, 18])
    e = lj.energy(dimer)
    (de,) = torch.autograd.grad(e, r, create_graph=True)
    (d2e,) = torch.autograd.grad(de, r)
    assert float(e.detach()) == pytest.approx(-eps, rel=1e-12)
    assert abs(float(de.detach())) < 1e-12
    assert float(d2e) > 0


def test_stillinger_weber_diamond_silicon_cohesive_energy():
    for cubic in (False, True):
        si = Structure.from_ase(bulk("Si", "diamond", a=5.431, cubic=cubic))
        assert float(StillingerWeber().energy(si)) / len(si) == pytest.approx(-4.3366, abs=1e-4)


def test_stillinger_weber_forces_vanish_on_the_perfect_crystal_and_not_on_a_rattled_one():
    si = Structure.from_ase(bulk("Si", "diamond", a=5.431, cubic=True))
    assert float(forces(StillingerWeber(), si).abs().max()) < 1e-10
    assert float(forces(StillingerWeber(), _rattled(bulk("Si", "diamond", a=5.431, cubic=True))).abs().max()) > 0.1


def test_dsf_coulomb_reproduces_the_rock_salt_madelung_constant():
    a = 5.64
    nacl = Structure.from_ase(bulk("NaCl", "rocksalt", a=a, cubic=True) * (2, 2, 2))
    e = float(DSFCoulomb({"Na": 1, "Cl": -1}, cutoff=12.0, alpha=0.2).energy(nacl))
    madelung = -e / (len(nacl) / 2) * (a / 2) / 14.399645
    assert madelung == pytest.approx(1.747565, rel=2e-3)


def test_bks_silica_relaxes_quartz_to_its_known_bond_length_and_its_walls_stay_out_of_the_way():
    from ase.spacegroup import crystal

    from scatterfit.analysis.chemistry import chemistry_report

    # alpha-quartz, P3_221 in ASE's setting (Si 3a, O 6c); Si-O 1.605 and 1.613 Å
    quartz = crystal(["Si", "O"], basis=[(0.4697, 0, 2 / 3), (0.4135, 0.2669, 0.7858)], spacegroup=154,
                     cellpar=[4.916, 4.916, 5.405, 90, 90, 120]) * (2, 2, 2)
    quartz.rattle(0.05, seed=0)
    s = Structure.from_ase(quartz)

    def relax(model):
        pos = s.positions.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([pos], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-6)

        def closure():
            opt.zero_grad()
            e = model.energy(s.with_(positions=pos))
            e.backward()
            return e

        opt.step(closure)
        relaxed = s.with_(positions=pos.detach())
        assert float(forces(model, relaxed).abs().max()) < 1e-3
        return chemistry_report(relaxed, cutoffs={"Si-O": 2.0, "O-O": 0.5, "Si-Si": 0.5})

    chem = relax(bks_silica(cutoff=8.0, coulomb_cutoff=8.0))
    assert chem["coordination"]["Si"]["O"] == {4: 24}
    assert 1.59 < chem["bonds"]["O-Si"]["mean"] < 1.63  # BKS quartz Si-O: 1.61 Å (experiment 1.61)
    plain = relax(bks_silica(cutoff=8.0, coulomb_cutoff=8.0, walls=False))
    assert abs(plain["bonds"]["O-Si"]["mean"] - chem["bonds"]["O-Si"]["mean"]) < 0.01


def test_ase_adapter_equals_the_wrapped_calculator_and_gives_its_stress():
    from ase.calculators.emt import EMT

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=3)
    atoms.calc = EMT()
    s = Structure.from_ase(atoms)
    model = ASECalculatorEnergy(EMT())
    assert float(model.energy(s)) == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
    np.testing.assert_allclose(forces(model, s).numpy(), atoms.get_forces(), atol=1e-10)
    # the cell gradient comes from the stress: compare with finite differences of the calculator's energy
    assert check_structure_gradients(model.energy, s, eps=1e-5, atol=1e-5, rtol=1e-4)


def test_ase_adapter_without_stress_refuses_a_cell_gradient():
    from ase.calculators.calculator import Calculator, all_changes

    class EnergyAndForcesOnly(Calculator):
        implemented_properties = ("energy", "forces")

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            self.results = {"energy": 0.0, "forces": np.zeros((len(atoms), 3))}

    s = Structure.from_ase(bulk("Cu", "fcc", a=3.6))
    cell = s.cell.clone().requires_grad_(True)
    with pytest.raises(ScatterfitError, match="no stress"):
        ASECalculatorEnergy(EnergyAndForcesOnly()).energy(s.with_(cell=cell))


@pytest.mark.parametrize("make", [
    lambda: LennardJones({"*": {"epsilon": 0.01, "sigma": 2.6}}, cutoff=6.0),
    lambda: Morse({"Au-Au": {"D": 0.4, "alpha": 1.6, "r0": 2.9}}, cutoff=6.0),
    lambda: Buckingham({"Au-Au": {"A": 1000.0, "rho": 0.3, "C": 20.0, "W": 1.0, "sigma_w": 1.5}}, cutoff=6.0),
    lambda: DSFCoulomb({"Au": 0.3}, cutoff=6.0, alpha=0.3),
], ids=["lj", "morse", "buckingham", "coulomb"])
def test_pair_potential_gradients_finite_and_periodic(make):
    model = make()
    assert check_structure_gradients(model.energy, random_cluster(12, min_dist=2.4, seed=1), occupancy=True)
    box = random_box(16, 0.05, numbers=(79,), min_dist=2.3, seed=2)
    assert check_structure_gradients(model.energy, box, occupancy=True)


@pytest.mark.parametrize("make", [
    lambda: LennardJones({"*": {"epsilon": 0.01, "sigma": 2.6}}, cutoff=6.0),
    lambda: Morse({"Si-O": {"D": 0.4, "alpha": 1.6, "r0": 1.7}, "O-O": {"D": 0.1, "alpha": 1.2, "r0": 2.6}},
                  cutoff=6.0),
    lambda: bks_silica(cutoff=6.0, coulomb_cutoff=7.0),
], ids=["lj", "morse", "bks"])
def test_compiled_pair_energies_equal_the_torch_expressions(make, monkeypatch):
    """The compiled kernel (energy/_pair_kernels.py, float64 on the CPU) gives the torch expressions' energy and
    gradients (positions, cell, occupancies) to 1e-12, in a periodic box (pairs across the cell, a reused list's
    pairs beyond the cutoff after a move) and in a cluster."""
    import scatterfit.energy._pair_kernels as kernels

    box = random_box(60, 0.066, numbers=(14, 8, 8), min_dist=1.5, seed=3)
    box = box.with_(occupancy=torch.linspace(0.7, 1.0, len(box), dtype=torch.float64))
    moved = box.positions + 0.2 * torch.tensor(np.random.default_rng(1).uniform(-1, 1, box.positions.shape))
    cluster = Structure(box.positions[:30].clone(), box.numbers[:30].clone())
    for structures in ((box, box.with_(positions=moved)), (cluster,)):
        results = []
        for use in (True, False):
            monkeypatch.setattr(kernels, "compiled", lambda s, use=use: use)
            model = make()
            for s in structures:
                leaves = {"positions": s.positions.clone().requires_grad_(), "occupancy":
                          s.occupancy.clone().requires_grad_()}
                if s.cell is not None:
                    leaves["cell"] = s.cell.clone().requires_grad_()
                energy = model.energy(s.with_(**leaves))
                energy.backward()
                results.append([float(energy.detach())] + [leaves[k].grad for k in sorted(leaves)])
        half = len(results) // 2
        for fast, slow in zip(results[:half], results[half:]):
            assert fast[0] == pytest.approx(slow[0], rel=1e-12, abs=1e-12)
            for a, b in zip(fast[1:], slow[1:]):
                assert float((a - b).abs().max()) <= 1e-12 * max(float(b.abs().max()), 1.0)


def test_compiled_pair_energies_differentiate_twice_through_the_torch_expressions(monkeypatch):
    """A force inside a loss (create_graph) differentiates the compiled energy's gradient again: through the torch
    expressions, so the second derivatives (here of Σ|F|² with respect to positions and cell) equal the torch
    path's."""
    import scatterfit.energy._pair_kernels as kernels

    box = random_box(45, 0.066, numbers=(14, 8, 8), min_dist=1.5, seed=7)
    out = []
    for use in (True, False):
        monkeypatch.setattr(kernels, "compiled", lambda s, use=use: use)
        pos, cell = box.positions.clone().requires_grad_(), box.cell.clone().requires_grad_()
        energy = bks_silica(cutoff=5.0, coulomb_cutoff=6.0).energy(box.with_(positions=pos, cell=cell))
        (force,) = torch.autograd.grad(energy, pos, create_graph=True)
        out.append(torch.autograd.grad((force**2).sum(), (pos, cell)))
    for a, b in zip(*out):
        assert float((a - b).abs().max()) <= 1e-10 * float(b.abs().max())


def test_bks_reuses_its_pair_lists_and_gives_a_fresh_lists_energy_and_forces():
    """A periodic box's pair lists (cutoff + 1 Å skin) are kept across the structures of an optimisation: after
    moves under half the skin the energy and forces equal those of a new potential (fresh lists within the
    cutoff, the extra pairs weighted to zero), and a larger move rebuilds the lists."""
    box = random_box(300, 0.066, numbers=(14, 8, 8), min_dist=1.5, seed=5)
    reused = bks_silica(cutoff=6.0, coulomb_cutoff=6.0)
    rng = np.random.default_rng(0)
    for step, amplitude in enumerate((0.0, 0.1, 0.1, 0.2, 0.8)):
        moved = box.positions + amplitude * torch.tensor(rng.uniform(-1, 1, box.positions.shape) / 3**0.5)
        results = []
        for potential in (reused, bks_silica(cutoff=6.0, coulomb_cutoff=6.0)):
            pos = moved.clone().requires_grad_()
            energy = potential.energy(box.with_(positions=pos))
            energy.backward()
            results.append((float(energy.detach()), pos.grad))
        (e_reused, f_reused), (e_fresh, f_fresh) = results
        assert abs(e_reused - e_fresh) <= 1e-10 * abs(e_fresh)
        assert float((f_reused - f_fresh).abs().max()) <= 1e-10 * float(f_fresh.abs().max())
        box = box.with_(positions=moved)
    builds = [term.cache.builds for term in reused.models]
    assert builds == [2, 2]  # the first structure, and the 0.8 Å move (beyond half the skin)


def test_stillinger_weber_and_bks_gradients():
    si = _rattled(bulk("Si", "diamond", a=5.431, cubic=True), 0.1)
    assert check_structure_gradients(StillingerWeber().energy, si)
    cluster = Structure(si.positions, si.numbers)
    assert check_structure_gradients(StillingerWeber().energy, cluster)
    silica = random_box(24, 0.066, numbers=(14, 8, 8), min_dist=1.5, seed=4)
    assert check_structure_gradients(bks_silica(cutoff=5.0, coulomb_cutoff=5.0).energy, silica, atol=1e-5)


@pytest.mark.parametrize("element, atoms", [("Si", bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)),
                                            ("C", bulk("C", "diamond", a=3.567, cubic=True) * (2, 2, 2))])
def test_tersoff_matches_ase_tersoff_calculator(element, atoms):
    """Energy and forces of a rattled crystal against ASE's independent Tersoff implementation (the LAMMPS form)
    with the same parameters; and the published cohesive energy of diamond Si (−4.63 eV/atom, Tersoff 1988)."""
    from ase.calculators.tersoff import Tersoff as ASETersoff
    from ase.calculators.tersoff import TersoffParameters

    from scatterfit.energy.tersoff import PARAMETERS

    atoms = atoms.copy()
    atoms.rattle(0.08, seed=2)
    atoms.calc = ASETersoff({(element,) * 3: TersoffParameters(**PARAMETERS[element])})
    s = Structure.from_ase(atoms)
    assert float(Tersoff(element).energy(s)) == pytest.approx(atoms.get_potential_energy(), rel=1e-12)
    np.testing.assert_allclose(forces(Tersoff(element), s).numpy(), atoms.get_forces(), atol=1e-9)
    if element == "Si":
        perfect = Structure.from_ase(bulk("Si", "diamond", a=5.432))
        assert float(Tersoff("Si").energy(perfect)) / 2 == pytest.approx(-4.63, abs=0.005)


def test_tersoff_gradients_and_three_rings_cost():
    c = random_cluster(10, numbers=(6,), min_dist=1.3, seed=1)
    assert check_structure_gradients(Tersoff("C").energy, c)
    si = _rattled(bulk("Si", "diamond", a=5.431, cubic=True), 0.1)
    assert check_structure_gradients(Tersoff("Si").energy, si)
    triangle = Structure([[0, 0, 0], [1.44, 0, 0], [0.72, 1.247, 0]], [6, 6, 6])
    chain = Structure([[0, 0, 0], [1.44, 0, 0], [2.16, 1.247, 0]], [6, 6, 6])  # 120° at the middle atom
    assert float(Tersoff("C").energy(triangle)) > float(Tersoff("C").energy(chain)) + 1.0
    with pytest.raises(ScatterfitError, match="no parameters"):
        Tersoff("Au")


def test_default_potential_matches_chgnet_own_ase_calculator(chgnet):
    from chgnet.model.dynamics import CHGNetCalculator

    atoms = bulk("Si", "diamond", a=5.43, cubic=True) * (2, 1, 1)
    atoms.rattle(0.05, seed=1)
    atoms.positions[0] += atoms.cell[0]  # an atom outside the unit cell: the graph must not wrap it differently
    atoms.calc = CHGNetCalculator(chgnet.model, use_device="cpu")
    s = Structure.from_ase(atoms)
    assert float(chgnet.energy(s)) == pytest.approx(atoms.get_potential_energy(), abs=2e-4 * len(atoms))
    np.testing.assert_allclose(forces(chgnet, s).numpy(), atoms.get_forces(), atol=2e-4)


def test_default_potential_refuses_shared_sites(chgnet):
    """A site shared by two elements (La0.5Ba0.5) is two half atoms on one spot: CHGNet gave NaN for it."""
    s = Structure.from_ase(bulk("Si", "diamond", a=5.43))
    shared = s.with_(occupancy=torch.tensor([0.5, 1.0], dtype=torch.float64))
    with pytest.raises(ScatterfitError, match="partly occupied or shared sites"):
        chgnet.energy(shared)


def test_default_potential_gradients_by_finite_differences(chgnet):
    """CHGNet runs in float32: central differences with a 1e-3 Å step, checked to 2 % of the largest force."""
    s = _rattled(bulk("Si", "diamond", a=5.43, cubic=True), 0.08)
    g = -forces(chgnet, s).numpy()
    h = 1e-3
    for atom, axis in ((0, 0), (3, 1), (5, 2)):
        p = s.positions.clone()
        p[atom, axis] += h
        ep = float(chgnet.energy(s.with_(positions=p)))
        p[atom, axis] -= 2 * h
        em = float(chgnet.energy(s.with_(positions=p)))
        assert (ep - em) / (2 * h) == pytest.approx(g[atom, axis], abs=0.02 * np.abs(g).max())
    cell = s.cell.clone().requires_grad_(True)
    e = chgnet.energy(s.with_(cell=cell))
    (gc,) = torch.autograd.grad(e, cell)
    c = s.cell.clone()
    c[0, 0] += h
    ep = float(chgnet.energy(s.with_(cell=c)))
    c[0, 0] -= 2 * h
    em = float(chgnet.energy(s.with_(cell=c)))
    assert (ep - em) / (2 * h) == pytest.approx(float(gc[0, 0]), abs=0.02 * float(gc.abs().max()))


def test_default_potential_on_a_molecule_and_a_batch(chgnet):
    from chgnet.model.dynamics import CHGNetCalculator

    water = molecule("H2O")
    s = Structure.from_ase(water)
    boxed = water.copy()
    boxed.center(vacuum=8.0)
    boxed.pbc = True
    boxed.calc = CHGNetCalculator(chgnet.model, use_device="cpu")
    assert float(chgnet.energy(s)) == pytest.approx(boxed.get_potential_energy(), abs=1e-3)
    si = Structure.from_ase(bulk("Si", "diamond", a=5.43))
    both = batch_energies(chgnet, [si, s])
    assert float(both[0]) == pytest.approx(float(chgnet.energy(si)), abs=1e-4)
    assert float(both[1]) == pytest.approx(float(chgnet.energy(s)), abs=1e-4)


def test_xtb_matches_tblite_ase_calculator_and_finite_differences():
    from tblite.ase import TBLite

    atoms = molecule("CH3OH")
    atoms.rattle(0.03, seed=2)
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    s = Structure.from_ase(atoms)
    xtb = XTBEnergy()
    assert float(xtb.energy(s)) == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(forces(xtb, s).numpy(), atoms.get_forces(), atol=1e-6)
    h = 1e-4
    p = s.positions.clone()
    p[1, 2] += h
    ep = float(xtb.energy(s.with_(positions=p)))
    p[1, 2] -= 2 * h
    em = float(xtb.energy(s.with_(positions=p)))
    assert (ep - em) / (2 * h) == pytest.approx(-float(forces(xtb, s)[1, 2]), abs=1e-4)


def test_xtb_refuses_periodic_structures_and_reports_unconverged_scf_in_one_line():
    with pytest.raises(ScatterfitError, match="molecules"):
        XTBEnergy().energy(Structure.from_ase(bulk("Si", "diamond", a=5.43)))
    cluster = random_cluster(13, numbers=(78,), min_dist=2.6, seed=0)
    with pytest.raises(ScatterfitError, match="no converged energy"):
        XTBEnergy(max_iter=5).energy(cluster)


def test_registry_names_and_bad_arguments():
    assert make_potential("sw").name == "stillinger-weber"
    assert make_potential("lj-argon").name == "lennard-jones"
    with pytest.raises(ScatterfitError, match="unknown potential"):
        make_potential("reaxff")
    with pytest.raises(ScatterfitError, match="bad arguments"):
        make_potential("morse", pairs={"Au-Au": {"D": 1.0, "alpha": 1.0, "r0": 2.9}}, colour="red")
    with pytest.raises(ScatterfitError, match="needs exactly"):
        make_potential("morse", pairs={"Au-Au": {"D": 1.0}}, cutoff=5.0)
    with pytest.raises(ScatterfitError, match="unknown element"):
        make_potential("lj", pairs={"Xx-Au": {"epsilon": 1.0, "sigma": 2.0}})
