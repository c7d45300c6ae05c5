# Two set-up commands (see README.md):  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-all bench install clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first, so nothing resolves to a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	# example data (measured Ni/Pt PDFs) ship inside the diffpy.cmi wheel; its code is not needed
	$(BIN)/pip install -q --no-deps diffpy.cmi==3.2.0
	# independent reference for the tests; --no-deps avoids 460 MB of Jupyter
	$(BIN)/pip install -q ipywidgets ipython pyyaml
	$(BIN)/pip install -q --no-deps DebyeCalculator==1.1.1
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/scatterfit demo --out out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/forward.py

clean:
	rm -rf $(VENV) out
