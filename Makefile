# make demo: create .venv, install multilevel with all its extras, fit the sleepstudy (lmer), cbpp (glmer) and Orange growth-curve (nlme) examples.
# make test: create .venv, install the dev extras, run ruff, mypy and the test suite.
# make docs: create .venv, install the docs and all extras, build the documentation site into site/
#            (tutorials executed; no network needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q

.PHONY: demo test test-slow lint bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

demo: $(BIN)/python
	$(PIP) -e ".[all]"
	$(BIN)/multilevel demo

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) -e ".[dev]"
	touch $@

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy src

test: lint
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.dev-installed $(VENV)/.docs-installed
	$(BIN)/python -m pytest -q -m slow || [ $$? -eq 5 ]  # 5: no slow test collected

$(VENV)/.docs-installed: pyproject.toml | $(BIN)/python
	$(PIP) -e ".[docs,all]"
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/inference_bench.py
	$(BIN)/python benchmarks/glmm_bench.py

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
