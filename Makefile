# motcua — the two commands a newcomer needs are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PACKAGES := -e libs/motcua -e libs/motcua-dev -e services/intake -e services/routing -e services/signing \
            -e services/notify -e services/archive
STAMP := $(VENV)/.installed

.PHONY: venv setup protos run demo test lint unit fuzz bench lock clean manifests

# The virtualenv, with every dependency pinned by requirements/constraints.txt.
$(STAMP): requirements/constraints.txt requirements/dev.txt libs/motcua/pyproject.toml libs/motcua-dev/pyproject.toml \
          services/*/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c requirements/constraints.txt -r requirements/dev.txt $(PACKAGES)
	touch $(STAMP)

venv: $(STAMP)

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

# Installs what is missing on the machine (RabbitMQ, poppler-utils, fonts), starts RabbitMQ if it
# is stopped, generates the protobuf code.
setup: venv protos
	$(PY) -m motcua_dev.infra ensure --no-s3

# Starts SeaweedFS (if its S3 port is free) and the five services; Ctrl-C stops everything.
run: setup
	$(PY) scripts/run.py

# Submits a sample dossier to the running platform and prints its journey until it is archived.
demo: protos
	$(PY) scripts/demo.py

lint: protos
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/buf lint protos

# The whole suite: lint, unit, integration (real RabbitMQ, SeaweedFS, both store backends),
# e2e and reliability (services as processes). Benchmarks are separate: make bench.
test: setup lint
	$(VENV)/bin/pytest

unit: protos
	$(VENV)/bin/pytest -m "not integration and not e2e and not reliability and not fuzz"

# The fuzz suite's long profile (10,000 cases per RPC and per work queue's service; MOTCUA_FUZZ_EXAMPLES=N
# bounds it) against the platform as processes; `make test` runs its short profile. The cases and
# statuses seen land in var/fuzz/report.json.
fuzz: setup
	MOTCUA_FUZZ_PROFILE=long $(VENV)/bin/pytest tests/fuzz -m fuzz -p no:cacheprovider -q

# Regenerates deploy/'s per-service and per-area parts from deploy/processes.yaml and the catalog
# (after adding an area or a process); the contract tests then check every overlay.
manifests: venv
	$(PY) -m motcua_dev.deploy

bench: setup
	for bench in tests/perf/bench_*.py; do echo "== $$bench"; $(PY) $$bench || exit 1; done

# Re-pin every package after changing a project file.
lock:
	rm -rf /tmp/motcua-lock && $(PYTHON) -m venv /tmp/motcua-lock
	/tmp/motcua-lock/bin/pip install --quiet -r requirements/dev.txt $(PACKAGES)
	(head -2 requirements/constraints.txt; /tmp/motcua-lock/bin/pip freeze --exclude-editable | grep -v -e '^-e' -e '@ file://') > requirements/constraints.new
	mv requirements/constraints.new requirements/constraints.txt

clean:
	rm -rf var/ .pytest_cache .ruff_cache
