"""Figures written beside every refinement (report/plots.py)."""

from scatterfit import Structure


def test_chemistry_plot_draws_coordination_and_angle_panels(tmp_path):
    """The chemist's distributions figure written beside every refinement (report/plots.py)."""
    from ase.build import bulk

    from scatterfit.analysis.chemistry import chemistry_report
    from scatterfit.report.plots import plot_chemistry

    rock_salt = Structure.from_ase(bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2))
    report = chemistry_report(rock_salt, cutoffs={"Na-Cl": 3.0})
    assert report["coordination"]["Na"]["Cl"] == {6: 32}
    assert plot_chemistry(report, tmp_path / "chem.png")
    assert (tmp_path / "chem.png").stat().st_size > 10_000
    assert not plot_chemistry({}, tmp_path / "none.png")
