# The two commands: `make run` (install what is needed, start SeaweedFS + the server) and `make test` (everything).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PYODIDE := web/node_modules/pyodide/package.json
RUNTIME := build/runtime/runtime.json
ENGINE_SOURCES := $(shell find browser_py wire -name '*.py' -not -path '*/__pycache__/*')
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test unit e2e lint assets chromium faketime install clean bench

run: install assets
	$(PY) -m server

test: install assets chromium faketime lint
	$(PY) -m pytest

unit: install
	$(PY) -m pytest tests

e2e: install assets chromium faketime
	$(PY) -m pytest e2e

lint: install
	$(VENV)/bin/ruff check server browser_py wire tests e2e bench web/build_runtime.py
	$(VENV)/bin/mypy

install: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

$(PYODIDE): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	touch $@

assets: $(RUNTIME)

$(RUNTIME): $(INSTALLED) $(PYODIDE) web/build_runtime.py web/snapshot.mjs $(ENGINE_SOURCES)
	$(PY) web/build_runtime.py

# Our engine against raw fetch and Uppy 5/6 in headless Chromium (about 15 min; installs the peers with npm ci).
# Writes bench/results/latest.json, the chart and the tables in BENCHMARKS.md. ARGS='--quick' for a smoke run.
bench: install assets chromium
	$(PY) -m bench $(ARGS)

# Debian's Chromium for the e2e tests (Playwright's own browser download is not used).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "installing Debian chromium"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

# libfaketime, preloaded into Chromium by e2e/test_clock.py to give the browser a clock hours off.
FAKETIME_LIB := /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
faketime:
	@if [ ! -e $(FAKETIME_LIB) ]; then \
		echo "installing Debian faketime"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq faketime >/dev/null; \
	fi

clean:
	rm -rf build web/node_modules .pytest_cache .mypy_cache .ruff_cache
