# Wenzheng: two set-up commands, `make demo` and `make test`; `make bench` for figures.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The demo archive is judged as of this moment, so the demo looks the same on every machine.
DEMO_NOW ?= 2026-11-22T10:00:00+08:00

.PHONY: install browser-deps audit-deps demo test bench lock clean

# Installed at the versions in constraints.txt (refreshed by `make lock`).
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m generator check
	$(PY) -m generator scorecards --now $(DEMO_NOW)
	$(PY) -m generator serve --now $(DEMO_NOW) --out site --port 8000

# Browser tests need Debian's chromium (and a CJK font for readable screenshots)
# and axe-core from npm, installed here, never at test time; the bridge's proxy
# test runs Debian's nginx in front of it.
browser-deps:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium fonts-noto-cjk)
	@test -x /usr/sbin/nginx || (apt-get update && apt-get install -y nginx-light)
	@test -f tests/browser/node_modules/axe-core/axe.min.js || (cd tests/browser && npm ci --no-audit --no-fund)

# The audit verifies SSH commit signatures with ssh-keygen (docs/audit.md).
audit-deps:
	@command -v ssh-keygen >/dev/null || (apt-get update && apt-get install -y openssh-client)

test: install browser-deps audit-deps
	$(PY) -m pytest -q -n 2

bench: install browser-deps
	$(PY) bench/run.py

# The newest versions pyproject.toml allows, written to constraints.txt; then
# `make test` (a golden-file diff there shows what the new versions change).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[test]'
	{ sed -n '/^#/p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) site .pytest_cache .hypothesis
