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

# The test environment is requirements/test.lock, hash-checked (`make lock` re-locks); foxnb on
# top, built with the locked setuptools.
$(STAMP): $(PY) pyproject.toml requirements/test.lock $(wildcard setup.py)
	$(PY) .ci/lockcheck.py
	PIP_CACHE_DIR=$(B)/pip-cache $(PY) -m pip install -q --require-hashes -r requirements/test.lock
	PIP_CACHE_DIR=$(B)/pip-cache $(PY) -m pip install -q --no-deps --no-build-isolation -e .
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

# Under `coverage run` (pyproject [tool.coverage]); fails below 90 % of foxnb/. test_start.py
# (what a fresh kernel imports) runs outside it: coverage imports modules into every process.
unit: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	rm -rf $(B)/coverage && mkdir -p $(B)/coverage
	$(TESTENV) COVERAGE_FILE=$(B)/coverage/data $(PY) -m coverage run -m pytest -q \
	    --basetemp=$(B)/pytest --ignore=tests/test_start.py tests
	$(TESTENV) $(PY) -m pytest -q -p no:cacheprovider --basetemp=$(B)/pytest-start \
	    tests/test_start.py
	COVERAGE_FILE=$(B)/coverage/data $(PY) -m coverage combine -q
	COVERAGE_FILE=$(B)/coverage/data $(PY) -m coverage report --fail-under=90

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
# Supply chain: licences of the runtime dependencies, vulnerability audit of the lock.
test: licenses audit
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

# Release and supply chain. build/tools: uv, pip-audit, cyclonedx-py, pip-licenses from
# requirements/tools.lock; build/runtime-venv: exactly requirements/runtime.lock (what a user's
# `pip install foxnb` brings), the subject of `make sbom` and `make licenses`.
.PHONY: dist lock sbom licenses audit
TOOLS := $(B)/tools
RUNTIME := $(B)/runtime-venv
UV := UV_CACHE_DIR=$(B)/uv-cache $(TOOLS)/bin/uv
LOCK := $(UV) pip compile -q --generate-hashes --custom-compile-command "make lock" \
	$(if $(LOCK_UPGRADE),--upgrade,)

$(TOOLS)/.installed: requirements/tools.lock
	$(PYTHON) -m venv $(TOOLS)
	PIP_CACHE_DIR=$(B)/pip-cache $(TOOLS)/bin/pip install -q --require-hashes --no-deps \
	    -r requirements/tools.lock
	touch $@

$(RUNTIME)/.installed: $(TOOLS)/.installed requirements/runtime.lock
	rm -rf $(RUNTIME)
	$(UV) venv -q --python $(PYTHON) $(RUNTIME)
	$(UV) pip install -q --python $(RUNTIME)/bin/python --require-hashes \
	    -r requirements/runtime.lock
	touch $@

# sdist + wheel in build/dist (locked setuptools, no isolation); fails on any deprecation
# warning in the build log and on `twine check --strict`.
dist: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	rm -rf $(B)/dist
	$(TESTENV) $(PY) -m build --no-isolation --outdir $(B)/dist . > $(B)/dist.log 2>&1 \
	    || { cat $(B)/dist.log; exit 1; }
	@! grep -i 'deprecat' $(B)/dist.log || { echo "deprecation warning in the build: $(B)/dist.log"; exit 1; }
	$(PY) -m twine check --strict $(B)/dist/*

# Re-lock (keeps pins that still fit; `make lock LOCK_UPGRADE=1` takes the newest releases).
lock: $(TOOLS)/.installed $(PY)
	$(LOCK) --python $(PY) pyproject.toml requirements/build.in --extra test \
	    -o requirements/test.lock
	$(LOCK) --python $(PY) pyproject.toml -c requirements/test.lock -o requirements/runtime.lock
	$(LOCK) --python $(TOOLS)/bin/python requirements/tools.in -o requirements/tools.lock

# CycloneDX JSON of the runtime dependencies, foxnb (from pyproject.toml) the root component.
sbom: $(RUNTIME)/.installed
	$(TOOLS)/bin/cyclonedx-py environment --pyproject pyproject.toml --output-reproducible \
	    --of JSON -o $(B)/sbom.cdx.json $(RUNTIME)/bin/python
	@echo "SBOM: $(B)/sbom.cdx.json"

# Fails on a runtime dependency whose licence is not on .ci/licenses.py's allow list.
licenses: $(RUNTIME)/.installed
	$(TOOLS)/bin/pip-licenses --python $(RUNTIME)/bin/python --from=mixed --with-system \
	    --format=json --output-file $(B)/licenses.json > /dev/null
	$(TOOLS)/bin/python .ci/licenses.py $(B)/licenses.json

# pip-audit of requirements/test.lock; ONE "SKIPPED vulnerability audit" line when no advisory
# service can be reached (.ci/audit.py checks with a canary first).
audit: $(TOOLS)/.installed
	$(TOOLS)/bin/python .ci/audit.py requirements/test.lock $(B)/audit

# Memory safety (.ci/sanitize): the AOT tests with the native code built with ASan + UBSan, the
# exported main.c under valgrind.
.PHONY: sanitize matrix
sanitize: $(STAMP)
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) PY=$(PY) .ci/sanitize

# Version matrix (noxfile.py): the oldest supported numba/llvmlite/numpy (`make test` is the
# newest). nox from requirements/nox.lock (hash-checked) in build/nox-venv, sessions in build/nox.
NOXVENV := $(B)/nox-venv
$(NOXVENV)/.installed: requirements/nox.lock
	$(PYTHON) -m venv $(NOXVENV)
	PIP_CACHE_DIR=$(B)/pip-cache $(NOXVENV)/bin/pip install -q --require-hashes --no-deps \
	    -r requirements/nox.lock
	touch $@

matrix: $(NOXVENV)/.installed
	@mkdir -p $(BUILDDIRS)
	$(TESTENV) $(NOXVENV)/bin/nox -s oldest
