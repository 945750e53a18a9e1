# foxnb — two commands: `make demo` (run the quick start headless) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.foxnb-installed
# Tests and notebooks run with a private IPython profile and no user Jupyter config.
TESTENV := IPYTHONDIR=$(CURDIR)/build/ipython JUPYTER_NO_CONFIG=1

.PHONY: demo test lint typecheck unit notebooks lab bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml $(wildcard setup.py)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	@mkdir -p build
	$(PY) -m foxnb._demo notebooks/01_quickstart.ipynb build/01_quickstart.html

lint: $(STAMP)
	$(VENV)/bin/ruff check foxnb tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict foxnb

unit: $(STAMP)
	@mkdir -p build/ipython
	$(TESTENV) $(PY) -m pytest -q tests

notebooks: $(STAMP)
	@mkdir -p build/ipython
	$(TESTENV) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=300 notebooks/

test: lint typecheck unit notebooks

# LABFLAGS: e.g. `make lab LABFLAGS=--no-browser`; root (containers) needs --allow-root.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LABFLAGS) \
	    $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: $(STAMP)
	$(PY) bench/jit.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
