# Two commands do everything on a fresh machine (Python 3.11 + the package registries):
#   make demo   set up .venv if needed, then run the default simulation
#   make test   set up .venv (with the test tools) if needed, then run lint, types and tests
PYTHON ?= python3
VENV   := .venv
UV     := $(VENV)/bin/uv
PY     := $(VENV)/bin/python

.PHONY: demo test lint bench lock clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

# Installs compile bytecode (uv does not unless asked, and Python does not write it
# where PYTHONDONTWRITEBYTECODE is set), so the first run starts as fast as the tenth.
$(VENV)/.runtime: $(UV) requirements/runtime.txt pyproject.toml
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements/runtime.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m compileall -q src
	touch $@

$(VENV)/.dev: $(UV) requirements/dev.txt pyproject.toml
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r requirements/dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m compileall -q src
	touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(PY) -m compileall -q src
	$(VENV)/bin/transactive simulate

test: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -n 2 -p no:cacheprovider

bench: $(VENV)/.dev
	$(PY) benchmarks/run.py

# Re-pin the dependencies after changing pyproject.toml. The runtime pins are
# those of the test pins (one venv may hold both: `make demo` must not swap a
# package the tests ran on for another version); they hold the 'server' extra, so
# `transactive serve` and `transactive device` run in the venv `make demo` made.
lock: $(UV)
	$(UV) pip compile --quiet pyproject.toml --extra dev -o requirements/dev.txt
	$(UV) pip compile --quiet pyproject.toml --extra server -c requirements/dev.txt -o requirements/runtime.txt

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
