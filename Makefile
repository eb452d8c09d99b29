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

## The main job: run a script on the simulated observatory.
run: $(STAMP)
	$(VENV)/bin/run_script examples/sleep.py -p sleep_time=0.5 -p checkpoints='[one, two, three]'

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
