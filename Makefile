# The two commands: `make run` (install what is needed, start SeaweedFS + the server) and `make test` (everything).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PYODIDE := web/node_modules/pyodide/package.json
PUPPETEER := e2e/engines/node_modules/puppeteer-core/package.json
REACT := clients/react/node_modules/vite/package.json
RUNTIME := build/runtime/runtime.json
ENGINE_SOURCES := $(shell find browser_py wire -name '*.py' -not -path '*/__pycache__/*')
CHROMIUM ?= /usr/bin/chromium

.PHONY: clients dist run test test-browsers test-python unit e2e lint assets chromium faketime engines postgresql clamav nginx redis install clean bench load load-cpu

# Scans uploads when a clamd answers (SCAN=auto; a missing one is said in one line at start). nginx in front (the
# Background Fetch hand-off on) when installed or installable; else the app alone, said at start (EMBEDDED_PROXY).
run: install assets
	@$(MAKE) --no-print-directory nginx || echo "nginx could not be installed: serving without it (Background Fetch hand-off off)"
	SCAN=$${SCAN:-auto} $(PY) -m server

# Two pytest runs at once (make -j2), each printed whole when it ends; both must pass. The browser tests spend most
# of their time waiting on browsers and throttled transfers, so they run in E2E_WORKERS processes (pytest-xdist; a
# test file stays in one, with its module's server) while the Python suites run beside them: on SQLite, then those
# that store state again on PostgreSQL (POSTGRES_SUITES). Each process has its own SeaweedFS, clamd, ports and temp
# dirs. Every run prints its slowest tests (DURATIONS), so a CI log shows where the time went.
E2E_WORKERS ?= 2
DURATIONS ?= 25
E2E := $(PY) -m pytest e2e -n $(E2E_WORKERS) --dist loadfile --durations=$(DURATIONS)
test: install assets chromium faketime engines postgresql clamav nginx redis clients lint
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-browsers test-python

test-browsers:
	$(E2E)

test-python:
	$(PY) -m pytest tests --durations=$(DURATIONS); sqlite=$$?; \
	$(PY) -m pytest $(POSTGRES_SUITES) --db=postgresql --durations=$(DURATIONS); exit $$((sqlite || $$?))

unit: install clamav nginx redis clients
	$(PY) -m pytest tests

e2e: install assets chromium faketime engines nginx redis postgresql clamav clients
	$(E2E)

lint: install
	$(VENV)/bin/ruff check server browser_py wire tests e2e bench load examples web/build_runtime.py
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

$(RUNTIME): $(INSTALLED) $(PYODIDE) web/build_runtime.py web/snapshot.mjs web/restore.mjs $(ENGINE_SOURCES)
	$(PY) web/build_runtime.py

# Every target of issue 17 in one go (about 40 min on a quiet 2-core machine; as root, for the link profiles): our
# engine against raw fetch and Uppy 5/6 in headless Chromium on loopback, then at 100 and 20 Mbit/s and a first visit
# at 50 Mbit/s (bench/link.py). Writes bench/results/latest.json (and link-<rate>.json), the chart and the tables in
# BENCHMARKS.md; ARGS='--quick' for a smoke run. Then the Background Fetch path's throughput beside the engine's
# through nginx (bench/results/background.json), also when a step before failed (the exit status says so).
bench: install assets chromium engines nginx
	$(PY) -m bench $(ARGS); status=$$?; $(PY) -m bench.background || status=1; exit $$status

# Debian's Chromium for the e2e tests (Playwright's own browser download is not used).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "installing Debian chromium"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

# Debian's PostgreSQL server binaries: the tests start a private cluster of their own from them (tests/support/
# postgres.py; the package's own system-wide cluster is neither needed nor used). `make test` runs the suites that
# store state a second time on it; left out are those about what no database changes (the SeaweedFS and nginx
# launchers, static files and the embedded mount's paths, settings, headers, CORS, log lines, content sniffing,
# start-up guards and file modes, the direct S3 calls; test_workers.py is on PostgreSQL in the first pass already).
POSTGRES_SUITES := tests/server tests/notify $(addprefix --ignore=tests/server/,test_seaweed.py test_static.py \
	test_settings.py test_headers.py test_cors.py test_content_policy.py test_production_guard.py test_nginx.py \
	test_embed.py test_logs.py test_proxy.py test_main_proxy.py test_workers.py test_s3_direct.py)
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing Debian postgresql"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

# Debian's clamav-daemon (clamd, sigtool) for the malware-scan tests: they start a private clamd with a signature
# database made from the EICAR test file (tests/support/clamd.py); the package's own service and freshclam are not used.
clamav:
	@if [ ! -x /usr/sbin/clamd ] || [ ! -x /usr/bin/sigtool ]; then \
		echo "installing Debian clamav-daemon"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq clamav-daemon clamav >/dev/null; \
	fi

# Debian's redis-server: several server instances share their rate-limit counters through it
# (RATE_LIMIT_STORAGE_URI=redis://…); tests and `make load` start a private one (tests/support/redis.py), the
# package's own system-wide service is neither needed nor used.
redis:
	@if [ ! -x /usr/bin/redis-server ]; then \
		echo "installing Debian redis-server"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; \
	fi

# Load test, not part of `make test` (about 25 minutes): Locust against one and two server instances on PostgreSQL
# behind nginx with a session model (browsers at their users' upload rate: the targets) and a churn model (stress),
# and a 10-minute soak (load/run.py). Writes load/results/latest.json, load/results/load.png and the load section of
# BENCHMARKS.md. ARGS='--ramp 100,500 --step-seconds 40 --soak-seconds 240': about 16 minutes; ARGS='--quick': a
# smoke run of about 5.
LOAD_INSTALLED := $(VENV)/.installed-load
load: install postgresql nginx redis $(LOAD_INSTALLED)
	$(PY) -m load $(ARGS)

# The server's CPU per request under the load scenario, revisions side by side (load/cpu.py; py-spy with --profile):
# make load-cpu ARGS='--rev HEAD~1 --rev HEAD --rounds 2 --profile /tmp/prof'
load-cpu: install postgresql redis $(LOAD_INSTALLED)
	$(PY) -m load.cpu $(ARGS)

$(LOAD_INSTALLED): $(INSTALLED)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,load]'
	touch $@

# Debian's nginx: server/nginx.py runs a private one (config, pid, temp files and logs in its own work directory) in
# front of the app and the store, so part URLs can be on the app's origin (Background Fetch sends no CORS preflight).
# The package's own system-wide service is neither needed nor used.
nginx:
	@if [ ! -x /usr/sbin/nginx ]; then \
		echo "installing Debian nginx"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx >/dev/null; \
	fi

# libfaketime, preloaded into Chromium by e2e/test_clock.py to give the browser a clock hours off.
FAKETIME_LIB := /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
faketime:
	@if [ ! -e $(FAKETIME_LIB) ]; then \
		echo "installing Debian faketime"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq faketime >/dev/null; \
	fi

# Firefox and WebKit for e2e/engines/: Debian's firefox-esr (driven by puppeteer-core over WebDriver BiDi, from
# e2e/engines/package-lock.json; it never downloads a browser) and WebKitGTK's WebDriver with Xvfb and the GObject
# bindings the test browser (e2e/engines/webkit_browser.py) runs on.
ENGINE_PACKAGES := /usr/bin/firefox-esr /usr/bin/WebKitWebDriver /usr/bin/Xvfb \
	/usr/lib/x86_64-linux-gnu/girepository-1.0/WebKit2-4.1.typelib /usr/lib/python3/dist-packages/gi/__init__.py
engines: $(PUPPETEER)
	@if ! ls $(ENGINE_PACKAGES) >/dev/null 2>&1; then \
		echo "installing Debian firefox-esr, webkit2gtk-driver, xvfb, gir1.2-webkit2-4.1, python3-gi"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			firefox-esr webkit2gtk-driver xvfb gir1.2-webkit2-4.1 python3-gi >/dev/null; \
	fi

# The wheel and sdist a host installs with pip (into dist/): the wheel carries web/, the built runtime and the React
# bindings inside the server package (hatch_build.py).
dist: install assets
	$(VENV)/bin/hatchling build -d dist

# The React bindings' toolchain (clients/react/package-lock.json): tsc checks a TypeScript consumer of the client's
# and the hook's declarations (tests/web/test_client_types.py); vite builds the React example (e2e/test_embed_react.py).
clients: $(REACT)

$(REACT): clients/react/package.json clients/react/package-lock.json
	npm ci --prefix clients/react --no-audit --no-fund --loglevel=error
	touch $@

$(PUPPETEER): e2e/engines/package.json e2e/engines/package-lock.json
	PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix e2e/engines --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf build web/node_modules e2e/engines/node_modules .pytest_cache .mypy_cache .ruff_cache
