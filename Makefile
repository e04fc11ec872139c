# Front door. `make up` runs the system on embedded defaults; `make test` runs every test.
# Both install what they need (Debian packages, the SBF toolchain, a pinned .venv) and skip
# what is already there.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python

.PHONY: help bootstrap program protos idl up test lint pytest bench clean

help:
	@echo "make up       build and run the system on embedded defaults"
	@echo "make test     set up and run every test (lint, type check, pytest)"
	@echo "make program  build the on-chain programs into program/target/deploy/"
	@echo "make bench    run the benchmarks: bench/results/*.json, rendered in bench/README.md"
	@echo "make idl      regenerate program/idl/spec/*.json (Anchor 0.30+ IDL) from program/idl/*.json"

bootstrap:
	@scripts/bootstrap.sh

program: bootstrap
	@scripts/build-programs.sh

PROTOS := $(wildcard proto/collateral_vault/v1/*.proto)
gen/python/.stamp: $(PROTOS) scripts/gen_protos.sh | bootstrap
	@scripts/gen_protos.sh && touch $@

protos: bootstrap gen/python/.stamp

idl: bootstrap
	@$(PY) scripts/gen_idl_spec.py

up: program protos
	@eval "$$($(PY) scripts/devservices.py)" && $(PY) -m scripts.up

lint: bootstrap protos
	@$(PY) -m ruff check .
	@$(PY) -m mypy

pytest: program protos
	@eval "$$($(PY) scripts/devservices.py)" && $(PY) -m pytest $(PYTEST_ARGS)

test: lint pytest

bench: program protos
	@eval "$$($(PY) scripts/devservices.py)" && $(PY) -m bench

clean:
	rm -rf program/target gen .venv .local .mypy_cache .ruff_cache .pytest_cache
