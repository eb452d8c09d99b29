# ts_calibscripts developer commands. Every target sets up .venv first
# (Python 3.12, editable install pinned by requirements/constraints.txt).

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint typecheck pytest doc bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then \
		py=$$(.ci/find-python3.12) || exit 1; \
		echo "Creating $(VENV) with $$py"; \
		rm -rf $(VENV); $$py -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev,bench]'
	@touch $(STAMP)

# Each main-job run certifies into its own collection, so runs never conflict.
RUN_STAMP := $(shell date -u +%Y%m%dT%H%M%S)
RUN_COLLECTION := LATISS/calib/daily/run.$(RUN_STAMP)
VAR_DIR ?= var

## The main job: the LATISS daily default, generating and certifying
## calibrations, on the simulated observatory (full detectors, embedded repo
## under var/), then reading the results back with plain lsst.daf.butler.
## It makes its own bias, dark and flat, so it skips the reference
## calibrations a new simulated repository otherwise gets first (--no-bootstrap).
run: $(STAMP)
	CALIBSCRIPTS_VAR_DIR=$(VAR_DIR) $(VENV)/bin/run_script auxtel/make_latiss_calibrations.py \
		--simulate --time-scale 0.05 --no-bootstrap \
		-p generate_calibrations=true -p n_processes=1 -p calib_collection=$(RUN_COLLECTION)
	$(PY) examples/read_calibrations.py $(VAR_DIR)/repo/LATISS $(RUN_COLLECTION)

## The test command CI runs: lint, format check, type check, docs, tests.
test: lint typecheck doc pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

doc: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html doc doc/_build/html

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) doc/_build .mypy_cache .ruff_cache .pytest_cache
