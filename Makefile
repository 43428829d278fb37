# shopstream — the two commands that matter: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data/online-retail/by-day

.PHONY: help venv demo test test-fast bench lambdas up down clean

help:
	@echo "make demo    set up .venv, start the local stack, replay the bundled sample, print a summary"
	@echo "make test    set up .venv and run the whole test suite (unit, contract, integration, e2e)"
	@echo "make bench   end-to-end benchmark on the full dataset (DATA=$(DATA))"
	@echo "make lambdas build the Lambda zips and the dependency layer into build/lambda"

$(STAMP): requirements.txt requirements-lambda.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "shopstream needs Python 3.11 or newer; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/shopstream demo

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest tests/unit tests/contract

bench: venv
	$(BIN)/python -m bench.run $(DATA)

lambdas: venv
	$(BIN)/python infra/build_lambdas.py

up: venv
	$(BIN)/shopstream up

down: venv
	$(BIN)/shopstream down

clean:
	-$(BIN)/shopstream down 2>/dev/null
	rm -rf build .shopstream .pytest_cache
