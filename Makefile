# foxnb — two commands: `make demo` (run the quick start headless) and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.foxnb-installed
# Everything a run writes stays in build/: foxnb's cache, the IPython profile, Jupyter's
# data/runtime/config dirs, other tools' caches and temporary files (the user's
# ~/.cache/foxnb, ~/.ipython and ~/.local/share/jupyter are never touched).
B := $(CURDIR)/build
TESTENV := IPYTHONDIR=$(B)/ipython JUPYTER_NO_CONFIG=1 FOXNB_CACHE_DIR=$(B)/cache \
	JUPYTER_CONFIG_DIR=$(B)/jupyter/config JUPYTER_DATA_DIR=$(B)/jupyter/data \
	JUPYTER_RUNTIME_DIR=$(B)/jupyter/runtime XDG_CACHE_HOME=$(B)/xdg-cache \
	XDG_DATA_HOME=$(B)/xdg-data XDG_CONFIG_HOME=$(B)/xdg-config MPLCONFIGDIR=$(B)/mpl \
	TMPDIR=$(B)/tmp PIP_CACHE_DIR=$(B)/pip-cache
BUILDDIRS := $(B)/ipython $(B)/cache $(B)/tmp $(B)/jupyter/runtime

.PHONY: demo test lint typecheck unit notebooks browser lab bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	PIP_CACHE_DIR=$(B)/pip-cache $(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml $(wildcard setup.py)
	PIP_CACHE_DIR=$(B)/pip-cache $(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(PY) -m foxnb._demo notebooks/01_quickstart.ipynb build/01_quickstart.html

lint: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(VENV)/bin/ruff check foxnb tests bench

typecheck: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(VENV)/bin/mypy --strict foxnb

unit: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(PY) -m pytest -q --basetemp=$(B)/pytest tests

notebooks: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=300 notebooks/

# The panel in a real browser (Debian's chromium via apt, playwright from the venv); one skip
# line where apt cannot install chromium.
browser: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) PY=$(PY) .ci/browser

test: lint typecheck unit notebooks browser
# The documentation site (make docs) is part of the test: a docstring that breaks it fails.
test: docs

# The documentation site in build/docs (Sphinx, furo theme): warnings are errors; the notebooks
# are rendered with the outputs stored in them, never run. -E: a fresh environment every time
# (Sphinx does not see docstring changes in foxnb/). About 20 s.
.PHONY: docs
docs: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(VENV)/bin/sphinx-build -q -E -W --keep-going -b html docs $(B)/docs

# LABFLAGS: e.g. `make lab LABFLAGS=--no-browser`; root (containers) needs --allow-root.
lab: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LABFLAGS) \
	    $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(PY) bench/jit.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
