"""Bad input and faults at the doors: every case is one line on stderr naming the file, line or key (exit 2), never
a traceback, never a silently wrong number, never lost work. Malformed inputs are generated here."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk

from scatterfit import ScatterfitError
from scatterfit.cli import main
from scatterfit.scattering.pdf import pdf
from scatterfit.structure import Structure, read_structure

CONFIG = """
[structure]
file = "start.cif"
uiso = 0.004

[[datasets]]
name = "sim"
file = "sim.gr"

[[terms]]
kind = "data"
dataset = "sim"
model = "pdf"
xmin = 1.5
xmax = 10.0

[parameters]
free = ["lattice", "biso"]

[[strategy]]
optimizer = "lbfgs"
steps = 40

[output]
dir = "results"
checkpoint_every = 5
"""


@pytest.fixture
def case(tmp_path):
    truth = Structure.from_ase(bulk("Ni", "fcc", a=3.524, cubic=True)).with_uiso(0.006)
    r = torch.arange(0.01, 12.0, 0.01, dtype=torch.float64)
    g = pdf(truth, r, qdamp=0.04, qmax=25.0).numpy() + 0.005 * np.random.default_rng(0).standard_normal(len(r))
    np.savetxt(tmp_path / "sim.gr", np.column_stack([r.numpy(), g]), header="mode = xray\nqmax = 25.0")
    bulk("Ni", "fcc", a=3.56, cubic=True).write(str(tmp_path / "start.cif"))
    (tmp_path / "case.toml").write_text(CONFIG)
    return tmp_path


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    err = [e for e in err if not e.startswith(("scatterfit: warning", "refine: ", "search: "))]  # not progress
    assert len(err) == 1 and err[0].startswith("scatterfit: error:"), err
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    return err[0]


# --------------------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("edit, message", [
    (("xmax = 10.0", "xmax = 10.0\nweight = -1.0"), "[[terms]][0].weight: must be ≥ 0"),
    (("xmax = 10.0", "xmax = 10.0\nweight = 0.0"), "every term has weight 0"),
    (("xmax = 10.0", "xmax = 10.0\nweight = nan"), "[[terms]][0].weight: must be finite"),
    (("xmax = 10.0", "xmax = 1.5"), "xmin (1.5) must be smaller than xmax (1.5)"),
    (("uiso = 0.004", "uiso = -0.01"), "[structure].uiso: must be ≥ 0"),
    (('free = ["lattice", "biso"]', 'free = ["lattice", "biso", "scale"]'), "'scale' is refined while a data term"),
    (('free = ["lattice", "biso"]', 'free = ["lattice"]\nvalues = { qdamp = -0.1 }'), "values.qdamp: must be ≥ 0"),
    (("steps = 40", "steps = 0"), "[[strategy]][0].steps: must be ≥ 1"),
    (('optimizer = "lbfgs"', 'optimizer = "newton"'), "[[strategy]][0].optimizer: 'newton' is not one of"),
])
def test_nonsense_settings_are_refused_before_running(case, capsys, edit, message):
    text = CONFIG.replace(*edit)
    assert text != CONFIG
    (case / "bad.toml").write_text(text)
    assert main(["refine", str(case / "bad.toml"), "--qmax", "25"]) == 2
    _one_line_error(capsys, message, "bad.toml")
    assert not (case / "results" / "summary.json").exists()


def test_pdf_without_qmax_is_refused_then_taken_from_the_command_line(case, capsys):
    r, g = np.loadtxt(case / "sim.gr", unpack=True)
    np.savetxt(case / "sim.gr", np.column_stack([r, g]), header="mode = xray")  # the header has no Qmax
    assert main(["refine", str(case / "case.toml")]) == 2
    _one_line_error(capsys, "sim.gr gives no Qmax", "[[terms]][0]")
    assert main(["refine", str(case / "case.toml"), "--qmax", "25"]) == 0
    assert (case / "results" / "summary.json").is_file()


def test_output_folder_is_resolved_against_the_config_file(case, monkeypatch, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(elsewhere)
    assert main(["refine", str(case / "case.toml")]) == 0
    assert (case / "results" / "summary.json").is_file()
    assert not (elsewhere / "results").exists()


# --------------------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("where", ["file", "under_file", "unwritable"])
def test_bad_output_folder_fails_before_computing(case, capsys, where):
    (case / "a_file").write_text("x")
    out = {"file": case / "a_file", "under_file": case / "a_file" / "sub",
           "unwritable": Path("/proc/scatterfit-cannot-write-here")}[where]
    assert main(["refine", str(case / "case.toml"), "--out", str(out)]) == 2
    _one_line_error(capsys, str(out))
    assert not (case / "results").exists()


def test_simulate_checks_its_output_paths_first(tmp_path, capsys):
    bulk("Ni", "fcc", a=3.52, cubic=True).write(str(tmp_path / "ni.cif"))
    csv = tmp_path / "ni.csv"
    assert main(["simulate", str(tmp_path / "ni.cif"), "--out", str(csv), "--plot",
                 str(tmp_path / "missing" / "ni.png")]) == 2
    _one_line_error(capsys, "missing")
    assert not csv.exists()  # nothing half-done


def test_a_second_run_into_a_locked_folder_is_refused(case, capsys):
    from scatterfit.report.files import LOCK_NAME

    (case / "results").mkdir()
    (case / "results" / LOCK_NAME).write_text(str(os.getpid()))  # a live process holds it
    capsys.readouterr()
    assert main(["refine", str(case / "case.toml"), "--qmax", "25"]) == 2
    _one_line_error(capsys, "another scatterfit run", "results")
    (case / "results" / LOCK_NAME).write_text("999999999")  # its owner is gone: a stale lock is taken over
    assert main(["refine", str(case / "case.toml")]) == 0
    assert not (case / "results" / LOCK_NAME).exists()


def test_resume_refuses_another_configs_checkpoint(case, capsys):
    assert main(["refine", str(case / "case.toml")]) == 0
    assert (case / "results" / "checkpoint.pt").is_file()
    capsys.readouterr()
    (case / "other.toml").write_text(CONFIG.replace("xmax = 10.0", "xmax = 8.0"))
    assert main(["refine", str(case / "other.toml"), "--resume"]) == 2
    _one_line_error(capsys, "checkpoint.pt", "different config or data")


def _result_files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
            and p.suffix != ".pt"}


@pytest.mark.parametrize("stage", ["while staging", "while committing"])
def test_a_kill_while_writing_leaves_the_previous_set_or_none(case, monkeypatch, stage):
    from scatterfit.report import files as files_module

    assert main(["refine", str(case / "case.toml")]) == 0
    before = _result_files(case / "results")
    assert "summary.json" in before and all(len(v) for v in before.values())
    if stage == "while staging":
        import scatterfit.report.plots as plots

        def killed(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(plots, "plot_history", killed)
    else:
        real_commit, real_replace = files_module.ResultSet.commit, os.replace

        def killed_commit(self, marker_name, marker):
            calls = {"n": 0}

            def killed_replace(src, dst):
                calls["n"] += 1
                if calls["n"] == 3:  # after the old marker is gone and two new files are in place
                    raise KeyboardInterrupt
                return real_replace(src, dst)

            monkeypatch.setattr(files_module.os, "replace", killed_replace)
            try:
                real_commit(self, marker_name, marker)
            finally:
                monkeypatch.setattr(files_module.os, "replace", real_replace)

        monkeypatch.setattr(files_module.ResultSet, "commit", killed_commit)
    (case / "case.toml").write_text(CONFIG.replace("xmax = 10.0", "xmax = 9.0"))
    assert main(["refine", str(case / "case.toml")]) == 130
    after = _result_files(case / "results")
    if "summary.json" in after:
        assert after == before  # the previous complete set, untouched
    else:
        assert stage == "while committing"  # no marker: the folder holds no complete set
    assert all(len(v) for v in after.values())  # never a 0-byte file


def test_a_rerun_removes_files_the_new_result_does_not_have(case):
    from scatterfit.report.files import ResultSet

    assert main(["refine", str(case / "case.toml")]) == 0
    files = ResultSet(case / "results")
    files.stage("only_this.csv").write_text("1,2\n")
    files.commit("summary.json", {"loss": 0.0})
    names = {p.name for p in (case / "results").iterdir() if not p.name.startswith(".")}
    assert names == {"only_this.csv", "summary.json", "checkpoint.pt"}


# --------------------------------------------------------------------------------------------------- physics
def test_coincident_atoms_give_the_exact_debye_pattern_for_every_thread_count():
    import numba

    from scatterfit.scattering.debye import debye_intensity

    pos = torch.tensor([[0.0, 0, 0], [0, 0, 0], [1.5, 0, 0], [0, 2.5, 0], [0, 2.5, 0]], dtype=torch.float64)
    s = Structure(pos, torch.tensor([29, 29, 29, 8, 8]))
    q = torch.linspace(0.5, 12, 60, dtype=torch.float64)
    exact = debye_intensity(s, q, method="exact")
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            fast = debye_intensity(s, q, method="fast")
            torch.testing.assert_close(fast, exact, rtol=2e-4, atol=0)
    finally:
        numba.set_num_threads(before)
    # the coincident pair (Cu, Cu) adds 2 f_Cu² at every Q: I(Q) is far above the pattern without it
    single = Structure(pos[[0, 2, 3, 4]], torch.tensor([29, 29, 8, 8]))
    assert bool((exact > debye_intensity(single, q, method="exact")).all())
    x = pos.clone().requires_grad_(True)
    debye_intensity(s.with_(positions=x), q).sum().backward()
    assert bool(torch.isfinite(x.grad).all())


def test_a_data_grid_far_finer_than_the_model_grid_is_computed_in_bounded_memory():
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True))
    fine = torch.linspace(0.5, 30.0, 1_000_000, dtype=torch.float64)  # 1e6 rows: 20 GB before this was fixed
    coarse = torch.arange(0.5, 30.0, 0.01, dtype=torch.float64)
    g_fine = pdf(s, fine, qmax=25.0).numpy()
    g_coarse = pdf(s, coarse, qmax=25.0).numpy()
    diff = np.interp(coarse.numpy(), fine.numpy(), g_fine) - g_coarse
    assert np.abs(diff).max() < 2e-3 * np.abs(g_coarse).max()


def test_a_pdf_too_large_for_memory_is_refused_with_what_it_needs(monkeypatch):
    import sys

    pdf_module = sys.modules["scatterfit.scattering.pdf"]
    monkeypatch.setattr(pdf_module, "BAND_BYTES_LIMIT", 1000)
    s = Structure.from_ase(bulk("Ni", "fcc", a=3.52, cubic=True))
    with pytest.raises(ScatterfitError, match=r"needs about .* GB; lower rmax"):
        pdf(s, torch.arange(0.5, 30.0, 0.01, dtype=torch.float64))


# --------------------------------------------------------------------------------------------------- simulate
def test_simulate_uses_and_reports_the_displacements(tmp_path, capsys):
    from ase.cluster import Icosahedron

    from scatterfit.scattering.debye import debye_intensity

    Icosahedron("Au", 2).write(str(tmp_path / "au.xyz"))
    out = tmp_path / "iq.csv"
    assert main(["simulate", str(tmp_path / "au.xyz"), "--kind", "iq", "--out", str(out), "--method", "exact"]) == 0
    assert "Uiso 0.005 Å² for every atom (the file gives none" in capsys.readouterr().out
    assert main(["simulate", str(tmp_path / "au.xyz"), "--kind", "iq", "--out", str(out), "--method", "exact",
                 "--uiso", "0"]) == 0
    assert "Uiso 0 Å² (--uiso)" in capsys.readouterr().out
    q, i = np.loadtxt(out, delimiter=",", unpack=True)
    plain = read_structure(tmp_path / "au.xyz").with_uiso(0.0)
    np.testing.assert_allclose(i, debye_intensity(plain, torch.as_tensor(q), method="exact").numpy(), rtol=1e-6)
    assert main(["simulate", str(tmp_path / "au.xyz"), "--kind", "iq", "--out", str(out), "--biso",
                 str(8 * math.pi**2 * 0.01), "--method", "exact"]) == 0
    q, i_b = np.loadtxt(out, delimiter=",", unpack=True)
    u01 = debye_intensity(plain.with_uiso(0.01), torch.as_tensor(q), method="exact").numpy()
    np.testing.assert_allclose(i_b, u01, rtol=1e-6)
    assert main(["simulate", str(tmp_path / "au.xyz"), "--out", str(out), "--uiso", "-1"]) == 2
    _one_line_error(capsys, "--uiso must be a finite number ≥ 0")


def test_simulate_lorch_on_a_periodic_structure_is_refused(tmp_path, capsys):
    bulk("Ni", "fcc", a=3.52, cubic=True).write(str(tmp_path / "ni.cif"))
    assert main(["simulate", str(tmp_path / "ni.cif"), "--lorch", "--out", str(tmp_path / "g.csv")]) == 2
    _one_line_error(capsys, "--lorch applies to the Debye")


def test_help_texts_are_whole(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "exit status 2." in text.replace("\n", " ")  # the description is not cut mid-sentence
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--kind {gr,sq,fq,iq,saxs,xrd}" in text and "(default: gr)" in text
    assert "(default: the file's, else 0.005)" in text
    with pytest.raises(SystemExit):
        main(["refine", "--help"])
    assert "relative to the config file" in " ".join(capsys.readouterr().out.split())


def test_config_documentation_is_generated_from_the_schema(capsys):
    from scatterfit.config.schema import SECTIONS

    assert main(["config"]) == 0
    text = capsys.readouterr().out
    for section, keys in SECTIONS.items():
        for key, spec in keys.items():
            assert key in text and spec.help.replace(" (required)", "")[:40] in text
    assert main(["config", "--section", "strategy"]) == 0
    assert "[[strategy]]" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------- search
SEARCH = """
[[datasets]]
name = "np"
file = "np.gr"

[[terms]]
kind = "data"
dataset = "np"
model = "pdf"
qmax = 25.0

[parameters]
free = ["expansion"]

[search]
builder = "nanoparticle"
builder_args = {{ element = "{element}", lattice = "fcc" }}
variables.shape = {{ kind = "choice", options = ["cuboctahedron"] }}
variables.size = {{ kind = "integer", low = 1, high = 2 }}
swarm_size = 2
budget = 2
stall = 1
top_k = 1
inner_steps = 1
"""


def test_a_search_whose_every_candidate_fails_says_why(tmp_path, capsys):
    r = np.arange(1.5, 10.0, 0.02)
    np.savetxt(tmp_path / "np.gr", np.column_stack([r, np.sin(r)]))
    (tmp_path / "s.toml").write_text(SEARCH.format(element="Xx"))
    assert main(["refine", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "no candidate could be built", "unknown element 'Xx'")


def test_one_scale_per_data_term_in_the_summary(case):
    assert main(["refine", str(case / "case.toml"), "--qmax", "25"]) == 0
    summary = json.loads((case / "results" / "summary.json").read_text())
    assert "scale" not in summary["parameters"]
    assert summary["terms"]["sim"]["scale"] > 0


def test_the_parameter_line_summarises_a_per_site_parameter_of_many_sites():
    """A box's every atom has its Biso: the printed line gives their range and mean, not 600 values."""
    from scatterfit.commands.refine import LISTED, parameter_line

    many = {f"Biso[Si{k}]": 0.5 + 0.001 * k for k in range(LISTED + 1)}
    line = parameter_line({"a": 14.2, **many, "Biso[O1]": 2.0, "qdamp": 0.04}, {"esd": {"a": 0.001}})
    assert line == (f"a = 14.2000(10), Biso ({LISTED + 2} sites) = 0.5 … 2, mean "
                    f"{(sum(many.values()) + 2.0) / (LISTED + 2):.5g}, qdamp = 0.04")
    few = {f"Biso[Si{k}]": 0.5 for k in range(2)}
    assert parameter_line(few, {}) == "Biso[Si0] = 0.5, Biso[Si1] = 0.5"
