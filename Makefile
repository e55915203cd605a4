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
COLLECTIONS ?= BACH
DEMO_RUN ?= runs/demo
DEMO_STEPS ?= 400
MMMGEN := $(VENV)/bin/mmmgen
.PHONY: setup demo test test-slow test-all bench lint clean

setup: $(STAMP)          ## create .venv and install everything (idempotent)

$(STAMP): pyproject.toml Makefile scripts/setup-system.sh
	bash scripts/setup-system.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

demo: setup              ## corpus -> dataset -> tokenizer -> (a short training if no model yet) -> web app
	$(MMMGEN) corpus $(DATA)/corpus --collections $(COLLECTIONS)
	$(MMMGEN) prepare $(DATA)/corpus $(DATA)/dataset --genres $(DATA)/corpus/genres.csv --infill-prob 0.1
	$(MMMGEN) tokenizer $(DATA)/dataset $(DATA)/tokenizer
	test -f $(DEMO_RUN)/model.safetensors || $(MMMGEN) train --config configs/small.yaml \
		--dataset $(DATA)/dataset --tokenizer $(DATA)/tokenizer --output-dir $(DEMO_RUN) --max-steps $(DEMO_STEPS) --resume
	$(MMMGEN) app --model $(DEMO_RUN)

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
