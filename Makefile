# landrelease: `make run` (install what is missing, serve with demo data) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The peer suite ogctests (tests/test_ogc_peer_suite.py) pins httpx < 0.28 and pytest < 9: a venv of its own.
OGCTESTS_VENV := .venv-ogctests
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo opens reads (layers, summaries, dashboard) without a key; PUBLIC_READ=0 keeps them keyed.
PUBLIC_READ ?= 1
APT_PACKAGES = postgresql postgresql-$(PG_MAJOR)-postgis-3 gdal-bin
# chromium (+ a font, a recommendation skipped by --no-install-recommends): the dashboard browser tests
APT_PACKAGES += chromium fonts-liberation
# poppler-utils (pdftoppm, pdftotext): the Article 7 PDF tests render and read the PDF
APT_PACKAGES += poppler-utils
# pg_auto_failover (monitor and keeper): the failover test runs a formation of its own
APT_PACKAGES += pg-auto-failover-cli postgresql-$(PG_MAJOR)-auto-failover
PG_MAJOR = $(shell ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 | grep . || echo 15)

.PHONY: install system-packages run test schemathesis bench bench-full clean

install: system-packages $(VENV)/.installed $(OGCTESTS_VENV)/.installed

# Installs the Debian packages that are missing (as root), or says which command to run.
system-packages:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	      || { echo "apt-get install failed for:$$missing" >&2; exit 1; }; \
	    if ! dpkg -s postgresql-$$(ls /usr/lib/postgresql | sort -n | tail -1)-postgis-3 >/dev/null 2>&1; then \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-$$(ls /usr/lib/postgresql | sort -n | tail -1)-postgis-3 >/dev/null; fi; \
	  else \
	    echo "Missing system packages. Run as root:" >&2; \
	    echo "  apt-get update && apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

$(OGCTESTS_VENV)/.installed:
	@test -x $(OGCTESTS_VENV)/bin/python || $(PYTHON) -m venv $(OGCTESTS_VENV)
	$(OGCTESTS_VENV)/bin/pip install -q --disable-pip-version-check ogctests==0.1.15
	@touch $@

run: install
	$(BIN)/landrelease serve --demo --host $(HOST) --port $(PORT) $(if $(filter 1,$(PUBLIC_READ)),--public-read)

# ruff and mypy first (configured in pyproject.toml): a new finding fails the tests
test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=15

# The schemathesis run of `make test` (every check, stateful phase) with a far larger budget:
# SCHEMATHESIS_EXAMPLES test cases per operation, for up to SCHEMATHESIS_SECONDS.
SCHEMATHESIS_EXAMPLES ?= 2000
SCHEMATHESIS_SECONDS ?= 1800
schemathesis: install
	LANDRELEASE_SCHEMATHESIS_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) LANDRELEASE_SCHEMATHESIS_SECONDS=$(SCHEMATHESIS_SECONDS) \
	  $(BIN)/python -m pytest -q tests/test_schemathesis.py

# Benchmarks against tipg, the COPY floor and ogr2ogr; write bench/results.md (not part of `make test`).
bench: install
	$(BIN)/python -m bench.run --size small --output bench/results-small.md $(BENCH_ARGS)

bench-full: install
	$(BIN)/python -m bench.run --size large $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(OGCTESTS_VENV) .pytest_cache test-artifacts
