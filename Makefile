# shopstream — the two commands that matter: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data/online-retail/by-day

.PHONY: help venv browser lint demo test test-fast bench bench-quick acceptance faults load lambdas lock up down clean

help:
	@echo "make demo    set up .venv, start the local stack, replay the bundled sample, print a summary"
	@echo "make test    set up .venv, lint (ruff), run the whole test suite (unit, contract, integration, e2e)"
	@echo "make lint    ruff check . (the rules are in pyproject.toml)"
	@echo "make bench   end-to-end benchmark on the full dataset, every sink, DuckDB and PostgreSQL (DATA=$(DATA)),"
	@echo "             then 5M generated lines through a fresh stack in steps (BENCH_LINES=$(BENCH_LINES))"
	@echo "make bench-quick  the generated-lines benchmark alone, 200,000 lines"
	@echo "make acceptance  the full dataset delivered twice and a month backfilled: no fact row changes"
	@echo "make faults  the fault suite on the full dataset (DATA=$(DATA)): every case ends in reconcile, 0 lost, 0 doubled"
	@echo "make load    bounded load test of the HTTP API (count and time) with the emulator's and workers' memory"
	@echo "make lambdas build the Lambda zips and the dependency layers into build/lambda"
	@echo "make lock    rewrite the layers' hashed locks (requirements-lambda*.lock) from requirements-lambda*.txt"
	@echo "make browser install Debian's chromium + chromium-driver (the dashboard's browser test)"

$(STAMP): requirements.txt requirements-lambda.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "shopstream needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# checkov (tests/contract/test_checkov.py) in a virtualenv of its own: it pins boto3 and
# other libraries to versions requirements.txt cannot share.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

venv: $(STAMP) $(CHECKOV_STAMP)

# The dashboard's browser test drives Debian's headless Chromium through its chromedriver
# (selenium, with the driver's path given: nothing is downloaded at test time). Installed
# once, only when either binary is missing; as root directly, else through sudo. Elsewhere
# (no apt-get) install Chromium and its chromedriver yourself and point
# SHOPSTREAM_CHROMIUM and SHOPSTREAM_CHROMEDRIVER at them.
CHROMIUM     := $(or $(SHOPSTREAM_CHROMIUM),/usr/bin/chromium)
CHROMEDRIVER := $(or $(SHOPSTREAM_CHROMEDRIVER),/usr/bin/chromedriver)
APT_BROWSER  := apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver

browser:
	@if [ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ]; then \
	  echo "browser: $$($(CHROMIUM) --version 2>/dev/null | head -n 1) and $(CHROMEDRIVER) present"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser: $(CHROMIUM) or $(CHROMEDRIVER) is missing and there is no apt-get here: install Chromium and"; \
	  echo "  its chromedriver, then set SHOPSTREAM_CHROMIUM and SHOPSTREAM_CHROMEDRIVER to their paths"; \
	  exit 1; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "browser: installing Debian's chromium and chromium-driver"; \
	  export DEBIAN_FRONTEND=noninteractive; $(APT_BROWSER); \
	elif command -v sudo >/dev/null 2>&1; then \
	  echo "browser: installing Debian's chromium and chromium-driver (sudo)"; \
	  sudo sh -c 'export DEBIAN_FRONTEND=noninteractive; $(APT_BROWSER)'; \
	else \
	  echo "browser: $(CHROMIUM) or $(CHROMEDRIVER) is missing and this is not root (no sudo either); run as root:"; \
	  echo "  $(APT_BROWSER)"; \
	  exit 1; \
	fi

demo: venv
	$(BIN)/shopstream demo

# ruff (configured in pyproject.toml) first: a lint finding fails the run before the suite starts.
lint: venv
	$(BIN)/ruff check .

test: venv lint browser
	$(BIN)/python -m pytest

test-fast: venv lint
	$(BIN)/python -m pytest tests/unit tests/contract

# bench: the full dataset through every sink (bench.run), the whole dataset as one dropped
# file through the file loader (bench.file_loader), then the generated load of
# BENCH_LINES lines (bench.generated_stack, default 5,000,000: see BENCHMARKS.md for how long
# it takes on 2 cores). bench-quick: the generated load alone at 200,000 lines.
BENCH_LINES ?= 5000000
BENCH_TIMEOUT ?= 3600

bench: venv
	$(BIN)/python -m bench.run $(DATA)
	$(BIN)/python -m bench.file_loader $(DATA)
	$(BIN)/python -m bench.generated_stack --lines $(BENCH_LINES) --timeout $(BENCH_TIMEOUT)

bench-quick: venv
	$(BIN)/python -m bench.generated_stack --quick --timeout 900

acceptance: venv
	$(BIN)/python -m bench.acceptance $(DATA)
	$(BIN)/python -m bench.drop_acceptance $(DATA)

# The same cases `make test` runs on the bundled sample (tests/faults), on the full dataset.
faults: venv
	SHOPSTREAM_FAULTS_DATA=$(abspath $(DATA)) $(BIN)/python -m pytest tests/faults -p no:cacheprovider -v

load: venv
	$(BIN)/python -m bench.load

lambdas: venv
	$(BIN)/python infra/build_lambdas.py

# pip-compile --generate-hashes of each layer's requirements file (infra/build_lambdas.py
# --lock); the layers are installed from these locks with --require-hashes.
lock: venv
	$(BIN)/python infra/build_lambdas.py --lock

up: venv
	$(BIN)/shopstream up

down: venv
	$(BIN)/shopstream down

clean:
	-$(BIN)/shopstream down 2>/dev/null
	rm -rf build .shopstream .pytest_cache
