# Wenzheng: two set-up commands, `make demo` and `make test`; `make bench` for figures.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The demo archive is judged as of this moment, so the demo looks the same on every machine.
DEMO_NOW ?= 2026-11-22T10:00:00+08:00

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m generator check
	$(PY) -m generator scorecards --now $(DEMO_NOW)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/run.py
	$(PY) bench/bench_governance.py

clean:
	rm -rf $(VENV) site .pytest_cache .hypothesis
