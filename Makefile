# mcp-operator — every target installs what it needs; see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The simulator and the control-plane harness are test tooling, not part of the installed package.
export PYTHONPATH := $(CURDIR)/sim:$(CURDIR)
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install envtest helm registry generate lint test unit contract e2e demo sim bench clean

help:
	@echo "make demo      run the operator end to end on a local control plane and a cloud simulator"
	@echo "               (TARGET=aws-lambda, google-cloud-run or cloudflare-workers; default azure-container-apps)"
	@echo "make test      install everything needed and run the whole test suite"
	@echo "make envtest   obtain kube-apiserver, etcd and kubectl (prints their directory)"
	@echo "make sim       run the ARM simulator on its own"
	@echo "make generate  regenerate crds/ and docs/api.md from the API models"
	@echo "make lint      ruff and mypy"
	@echo "make bench     run the benchmarks and write BENCHMARKS.md"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

envtest:
	@bash hack/envtest/fetch.sh

helm:
	@bash hack/helm/fetch.sh

# A real OCI registry (the CNCF distribution registry) for the bundle tests, demo and benchmarks.
registry:
	@bash hack/registry/fetch.sh

generate: $(STAMP)
	$(BIN)/python -m mcp_operator.api.generate

lint: $(STAMP)
	$(BIN)/ruff check operator sim tests demo $(wildcard bench)
	$(BIN)/mypy

# The control plane (and the registry) are obtained first so that a slow first build is not counted against a
# test's timeout.
test: $(STAMP) envtest helm registry
	$(BIN)/python -m pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

contract: $(STAMP) registry
	$(BIN)/python -m pytest tests/contract $(PYTEST_ARGS)

e2e: $(STAMP) envtest helm registry
	$(BIN)/python -m pytest tests/controlplane tests/e2e $(PYTEST_ARGS)

demo: $(STAMP) envtest registry
	$(BIN)/python -m demo $(TARGET)

sim: $(STAMP)
	$(BIN)/python -m armsim $(SIM_ARGS)

bench: $(STAMP) envtest registry
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
