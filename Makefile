# Two set-up commands (see README.md):  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-all test-gpu lint bench install clean browser

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first, so nothing resolves to a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	# the package with every optional stack the demo and the tests use (extras: ml, xtb, cluster, bench) and the
	# test tools (pytest, PDFfit2, gemmi, cryspy, ruff)
	$(BIN)/pip install -q -e '.[test]'
	# measured example data (Ni/Pt/CdSe PDFs, C60 intensity) ship inside the diffpy.cmi wheel; its code is not
	# needed, and DebyeCalculator is the tests' independent Debye reference: both --no-deps (their declared
	# dependencies pull 460 MB of Jupyter)
	$(BIN)/pip install -q --no-deps diffpy.cmi==3.2.0 DebyeCalculator==1.1.1
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/scatterfit demo --out out/demo

# Debian's headless Chromium and its driver, for the results page's browser test (tests/service)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; }

# the default suite; a test that skips fails under CI=true (tests/conftest.py)
test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# everything but the GPU tests (slow examples, the ray executor), with every skip counted as a failure
test-all: $(STAMP) browser
	$(BIN)/pip install -q -e '.[test,ray]'
	SCATTERFIT_STRICT=1 $(BIN)/python -m pytest -q -m 'not gpu'

# the GPU tests on a machine with CUDA, every skip a failure
test-gpu: $(STAMP)
	SCATTERFIT_STRICT=1 $(BIN)/python -m pytest -q -m gpu

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python benchmarks/forward.py

clean:
	rm -rf $(VENV) out
