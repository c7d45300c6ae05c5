"""Start-up in proportion to the job: the parser (and so `scatterfit --help`) imports neither torch nor ASE."""

import subprocess
import sys


def test_the_command_line_parser_imports_no_torch():
    code = ("import sys\nfrom scatterfit.cli import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('torch', 'ase', 'scipy', 'numba') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_simulate_help_states_the_librarys_default_uiso():
    from scatterfit.commands.simulate import UISO_HELP
    from scatterfit.structure import UISO_DEFAULT

    assert UISO_HELP == UISO_DEFAULT


def test_structure_is_still_importable_from_the_package():
    from scatterfit import Structure
    from scatterfit.structure import Structure as Same

    assert Structure is Same


def test_a_missing_structure_file_is_reported_before_the_heavy_imports(tmp_path):
    code = ("import sys\nfrom scatterfit.cli import main\n"
            f"print(main(['simulate', {str(tmp_path / 'none.cif')!r}, '--out', {str(tmp_path / 'x.csv')!r}]))\n"
            "print(sorted(m for m in ('torch', 'ase') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "none.cif: structure file not found" in done.stderr
    assert done.stdout.split() == ["2", "[]"]
