"""Space groups found by spglib, and the warning when a refinement lowers the symmetry it started from."""

import torch
from ase.build import bulk
from ase.geometry import cellpar_to_cell

from scatterfit.structure import Structure
from scatterfit.structure.spacegroup import detect_space_group


def _nacl(cellpar):
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.set_cell(cellpar_to_cell(cellpar), scale_atoms=True)
    return atoms


def test_known_groups_and_a_distortion():
    ni = Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True))
    assert detect_space_group(ni) == {"number": 225, "symbol": "Fm-3m", "operations": 192}
    assert detect_space_group(Structure.from_ase(_nacl([5.64, 5.64, 5.70, 90, 90, 90])))["symbol"] == "I4/mmm"
    low = detect_space_group(Structure.from_ase(_nacl([5.60, 5.70, 5.66, 90, 90, 89.4])))
    assert low["operations"] < 192 and low["number"] < 139
    shared = ni.with_(occupancy=torch.tensor([1.0, 0.5, 0.5, 0.5], dtype=torch.float64))
    assert detect_space_group(shared)["number"] == 221  # the corner site differs from the face centres
    assert detect_space_group(Structure(torch.zeros(1, 3), [6])) is None


def test_a_refinement_that_lowers_the_symmetry_says_so(caplog):
    """The refined structure's group beside the start's in the summary, and a warning when it is lower (a
    refinement result is built by hand: a symmetric start is a stationary point no optimiser leaves)."""
    import logging

    from scatterfit.commands.refine import symmetry_note
    from scatterfit.optim.runner import Result
    from scatterfit.report.results import summary
    from scatterfit.structure.parametrisation import Parametrisation

    start = Structure.from_ase(_nacl([5.64, 5.64, 5.64, 90, 90, 90]))
    param = Parametrisation(start, free=["positions"])
    moved = torch.zeros_like(start.positions)
    moved[0, 0] = 0.05
    theta = param.with_values(param.initial_vector(), "positions", moved)
    result = Result(theta, param.state(theta), param, 0.0, {})
    report = summary(result)
    with caplog.at_level(logging.WARNING, logger="scatterfit"):
        symmetry_note(report)
    assert "lowered the symmetry from Fm-3m (225)" in caplog.text
    groups = report["space_group"]
    assert groups["start"]["number"] == 225 and groups["refined"]["operations"] < groups["start"]["operations"]
