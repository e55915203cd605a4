# mmmgen — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

DATA ?= data
.PHONY: setup demo test test-slow test-all bench lint clean

setup: $(STAMP)          ## create .venv and install everything (idempotent)

$(STAMP): pyproject.toml Makefile scripts/setup-system.sh
	bash scripts/setup-system.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

demo: setup              ## export the embedded corpus, prepare a dataset, print its report
	$(VENV)/bin/mmmgen corpus $(DATA)/corpus
	$(VENV)/bin/mmmgen prepare $(DATA)/corpus $(DATA)/dataset --genres $(DATA)/corpus/genres.csv

test: setup              ## the fast test tier
	$(PY) -m pytest -q

test-slow: setup         ## slower tiers (and the optional ../shared/midi-dev tier)
	$(PY) -m pytest -q -m "slow or shared"

bench: setup
	$(PY) benchmarks/bench_prepare.py

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
