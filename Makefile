# Two commands do all the set-up on a fresh machine: `make up` and `make test`.
# Each creates .venv on first use with kcore and every plugin distribution
# under plugins/ installed editable (scripts/bootstrap.sh).

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.kcore-installed
PLUGIN_PROJECTS := $(wildcard plugins/*/pyproject.toml)
PYTEST_ARGS ?=

.PHONY: up test test-quick bench clean-venv

$(STAMP): pyproject.toml $(PLUGIN_PROJECTS) scripts/bootstrap.sh
	PYTHON=$(PYTHON) bash scripts/bootstrap.sh

up: $(STAMP)
	$(VENV)/bin/kcore up $(ARGS)

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The quick subset: everything but suites marked slow.
test-quick: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in benchmarks/*_bench.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
