# Two entry points: `make run` (a small default tuning run) and `make test`.
# Each creates .venv with Python 3.11 and installs jaxmbrl on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= runs/default

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

.PHONY: run test lint
run: $(VENV)/.installed
	$(PY) -m benchmarks.tune --env=cartpole --tuner=pbt --population=8 --trials=12 \
		--ready_interval=3 --space=planning --preset=tiny --out=$(OUT)

test: $(VENV)/.installed
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check jaxmbrl benchmarks tests
