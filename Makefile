# The front door: `make demo`, `make test`, `make down`. Each sets itself up from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
AIRFLOW_STAMP := $(VENV)/.airflow-$(shell cat requirements-airflow.lock | cksum | cut -d' ' -f1)
USERS  ?= 1000

.PHONY: setup demo test test-faults bench bench-models soak down clean

setup: $(STAMP) .jars/.fetched .jars/.thrift-auth .tools/.versitygw

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# the .[airflow] extra (Airflow as MWAA runs it, and moto for EMR's API): the orchestration tests, not the demo
$(AIRFLOW_STAMP): requirements-airflow.lock | $(STAMP)
	$(BIN)/pip install -q --disable-pip-version-check -c requirements.lock -r requirements-airflow.lock
	rm -f $(VENV)/.airflow-* && touch $@

.jars/.fetched: python_jobs/stack/jars.py | $(STAMP)
	$(BIN)/python -m python_jobs.stack.jars
	touch $@

# the local Thrift server's password check, compiled with the JDK's javac against the Hive classes PySpark ships
.jars/.thrift-auth: python_jobs/stack/thrift_auth.py python_jobs/stack/ThriftPasswordAuthenticator.java | $(STAMP)
	$(BIN)/python -m python_jobs.stack.thrift_auth
	touch $@

# the local S3 server, built once from the Go module proxy at the version pinned in python_jobs/stack/versitygw.py
.tools/.versitygw: python_jobs/stack/versitygw.py | $(STAMP)
	$(BIN)/python -m python_jobs.stack.versitygw
	touch $@

demo: setup
	$(BIN)/encore-recs generate --users $(USERS)
	$(BIN)/encore-recs run

# Debian's Chromium, for the browser tests (the docs lineage); apt needs root, as on CI and the dev machines
/usr/bin/chromium:
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

test: setup $(AIRFLOW_STAMP) /usr/bin/chromium
	$(BIN)/pytest

# the long tests: every kind of the fault-injection suite (make test runs one, a run killed and resumed) and the
# soak's accounting on 45 s of load; see docs/operations.md, Faults
test-faults: setup
	$(BIN)/pytest tests/test_fault_suite.py tests/test_soak.py --all-faults

# the pipeline at USERS (default 1000; e.g. make bench USERS="1000 100000"), per stage, and the pipeline's ALS
# on each engine beside the library implicit called directly
bench: setup
	$(BIN)/python benchmarks/bench.py --users $(USERS)

# every model on the replay at each of SCALES beside the generator's truth, in process
SCALES ?= 1000 100000
bench-models: setup
	$(BIN)/python benchmarks/models_bench.py --users $(SCALES)

# `serve` under mixed load for MINUTES on a stack of its own (loopback): reads, events with duplicates and junk, a
# run swapped in every few minutes, the S3 server stopped in the middle; see docs/operations.md, Soak
MINUTES ?= 30
soak: setup
	$(BIN)/python benchmarks/soak.py --minutes $(MINUTES)

down:
	@if [ -x $(BIN)/encore-recs ]; then $(BIN)/encore-recs down; else echo "nothing to stop"; fi

clean: down
	rm -rf .state target logs
