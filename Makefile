# Two commands (see README):  make demo   — set up + run the main job end to end on embedded defaults
#                             make test   — set up + run the whole test suite
# Local Airflow deployment:   make airflow / make airflow-stop — api-server, scheduler, dag-processor,
#                             triggerer over the embedded stack, 127.0.0.1 only (state in var/airflow-local/)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast lint format bench clean audit airflow airflow-stop airflow-status

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m include.sandbox.demo

airflow: setup
	$(PY) -m include.sandbox.deployment start

airflow-stop:
	$(PY) -m include.sandbox.deployment stop

airflow-status:
	$(PY) -m include.sandbox.deployment status

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest --durations=25

# Fast lane while coding: pure logic, properties, hooks/staging against the real PostgreSQL and
# sandboxes — no DAG runs, no scheduler, no browser. `make test` stays the whole truth.
test-fast: setup
	$(VENV)/bin/pytest -q tests/unit tests/property tests/integration tests/sandbox -m "not airflow and not deployment"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy  # include, dags, plugins ([tool.mypy] in pyproject.toml); zero errors

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Known vulnerabilities in the installed (pinned) dependencies; accepted findings: docs/security.md.
audit: setup
	$(PY) .ci/audit.py

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
