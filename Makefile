# The front door: `make demo`, `make test`, `make down`. Each sets itself up from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
USERS  ?= 1000

.PHONY: setup demo test down clean

setup: $(STAMP) .jars/.fetched

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

.jars/.fetched: python_jobs/jars.py | $(STAMP)
	$(BIN)/python -m python_jobs.jars
	touch $@

demo: setup
	$(BIN)/encore-recs generate --users $(USERS)
	$(BIN)/encore-recs run

test: setup
	$(BIN)/pytest

down:
	@if [ -x $(BIN)/encore-recs ]; then $(BIN)/encore-recs down; else echo "nothing to stop"; fi

clean: down
	rm -rf .state target logs
