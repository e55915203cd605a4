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
# CORPORA: a local copy of the open collections (e.g. ../shared/corpora); empty: download them (pinned, checksummed)
CORPORA ?=
MODEL_COLLECTIONS ?= all,open
MODEL_TRANSPOSE ?= 0
# the chord track (prepare --chords) in this share of the files; the rest without, as a user's MIDI mostly is
MODEL_CHORDS_SHARE ?= 0.5
COLLECTIONS ?= BACH
DEMO_RUN ?= runs/demo
DEMO_STEPS ?= 400
MODEL_SAMPLE ?= 1000
MODEL_RUN ?= runs/default
MODEL_MINUTES ?= 90
# then continued at half the peak learning rate (45 minutes), then 90 more with windows of alike
# length batched together (--batching auto: buckets, issue 26's recipe): 225 minutes
MODEL_CONTINUE_MINUTES ?= 45
MODEL_MORE_MINUTES ?= 90
# then 60 more on a copy of the data whose drum parts also come on random subsets of their kit (prepare
# --kit-subsets): the model keeps a song's kit. Trained on one thread (beside its control run, the same
# 60 minutes without the copies); MODEL_KITS_THREADS=0 takes the free cores
MODEL_KIT_SUBSETS ?= 0.5
MODEL_KITS_MINUTES ?= 60
MODEL_KITS_THREADS ?= 1
# then 60 more on a copy that also moves one pitched part of half the windows an octave (prepare
# --octave-copies): the model keeps a song's register, not its instrument's usual one. One thread, as the kits
MODEL_OCTAVE_COPIES ?= 0.5
MODEL_OCTAVES_MINUTES ?= 60
MODEL_CONTINUED = $(MODEL_RUN)-continued
MODEL_MORE = $(MODEL_RUN)-more
MODEL_KITS = $(MODEL_RUN)-kits
MODEL_FINAL = $(MODEL_RUN)-octaves
COMPARE_MINUTES ?= 12
SHIPPED := src/mmmgen/resources/default_model
MMMGEN := $(VENV)/bin/mmmgen
.PHONY: setup demo model compare test test-slow test-all bench lint clean

setup: $(STAMP)          ## create .venv and install everything (idempotent)

$(STAMP): pyproject.toml Makefile scripts/setup-system.sh
	bash scripts/setup-system.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

demo: setup              ## a piece from the shipped default model (out/demo), then the web app on it
	$(MMMGEN) generate --out out/demo --tracks 4 --bars 32 --seed 1
	$(MMMGEN) app --load out/demo/piece.txt

model: setup             ## rebuild the shipped default model (v2): music21's corpus + the open collections, configs/default-model-v2.yaml
	$(MMMGEN) corpus $(DATA)/corpus --collections $(MODEL_COLLECTIONS) --sample $(MODEL_SAMPLE) $(if $(CORPORA),--from $(CORPORA))
	$(MMMGEN) prepare $(DATA)/corpus $(DATA)/model/dataset --genres $(DATA)/corpus/genres.csv --infill-prob 0.1 --transpose $(MODEL_TRANSPOSE) \
		--chords --chords-share $(MODEL_CHORDS_SHARE)
	$(MMMGEN) tokenizer $(DATA)/model/dataset $(DATA)/model/tokenizer
	$(MMMGEN) train --config configs/default-model-v2.yaml --dataset $(DATA)/model/dataset \
		--tokenizer $(DATA)/model/tokenizer --output-dir $(MODEL_RUN) --max-minutes $(MODEL_MINUTES) --resume
	$(MMMGEN) train --config configs/default-model-v2.yaml --init-from $(MODEL_RUN) --dataset $(DATA)/model/dataset \
		--output-dir $(MODEL_CONTINUED) --max-minutes $(MODEL_CONTINUE_MINUTES) --learning-rate 5e-4 --keep-best false --resume
	$(MMMGEN) train --config configs/default-model-v2.yaml --init-from $(MODEL_CONTINUED) --dataset $(DATA)/model/dataset \
		--output-dir $(MODEL_MORE) --max-minutes $(MODEL_MORE_MINUTES) --learning-rate 5e-4 --batching auto --keep-best false --resume
	$(MMMGEN) prepare $(DATA)/corpus $(DATA)/model/dataset-kits --genres $(DATA)/corpus/genres.csv --infill-prob 0.1 --transpose $(MODEL_TRANSPOSE) \
		--chords --chords-share $(MODEL_CHORDS_SHARE) --kit-subsets $(MODEL_KIT_SUBSETS)
	$(MMMGEN) train --config configs/default-model-v2.yaml --init-from $(MODEL_MORE) --dataset $(DATA)/model/dataset-kits \
		--output-dir $(MODEL_KITS) --max-minutes $(MODEL_KITS_MINUTES) --learning-rate 5e-4 --batching auto --keep-best false \
		--threads $(MODEL_KITS_THREADS) --resume
	$(MMMGEN) prepare $(DATA)/corpus $(DATA)/model/dataset-octaves --genres $(DATA)/corpus/genres.csv --infill-prob 0.1 --transpose $(MODEL_TRANSPOSE) \
		--chords --chords-share $(MODEL_CHORDS_SHARE) --kit-subsets $(MODEL_KIT_SUBSETS) --octave-copies $(MODEL_OCTAVE_COPIES)
	$(MMMGEN) train --config configs/default-model-v2.yaml --init-from $(MODEL_KITS) --dataset $(DATA)/model/dataset-octaves \
		--output-dir $(MODEL_FINAL) --max-minutes $(MODEL_OCTAVES_MINUTES) --learning-rate 5e-4 --batching auto --keep-best false \
		--threads $(MODEL_KITS_THREADS) --resume
	$(MMMGEN) evaluate --model $(MODEL_FINAL) --dataset $(DATA)/model/dataset --samples 16 --free-samples 16 --write-card
	# NOTTINGHAM is GPL-3.0: evaluated, never trained on (its own folder, outside the training corpus)
	$(MMMGEN) corpus $(DATA)/eval-corpus --collections nottingham $(if $(CORPORA),--from $(CORPORA),--allow-unpinned)
	$(PY) scripts/eval_collections.py --model default-v1 --model $(MODEL_RUN) --model $(MODEL_CONTINUED) --model $(MODEL_MORE) --model $(MODEL_KITS) --model $(MODEL_FINAL) --corpus $(DATA)/corpus \
		--corpus $(DATA)/eval-corpus $(if $(wildcard ../shared/midi-styles),--midi ../shared/midi-styles) --out $(MODEL_FINAL)/collections.json
	$(PY) scripts/data_card.py $(DATA)/corpus $(MODEL_FINAL)
	$(PY) scripts/ship_model.py $(MODEL_FINAL) $(SHIPPED)   # v1 stays in default_model_v1 (--model default-v1)

compare: setup           ## the model card's comparison: the tutorial's recipe vs mmmgen's, same corpus, same wall time (run concurrently, one core each)
	$(MMMGEN) prepare $(DATA)/corpus $(DATA)/tutorial/dataset --genres $(DATA)/corpus/genres.csv --grid 4
	$(MMMGEN) tokenizer $(DATA)/tutorial/dataset $(DATA)/tutorial/tokenizer
	$(MMMGEN) prepare $(DATA)/corpus $(DATA)/compare/dataset --genres $(DATA)/corpus/genres.csv
	$(MMMGEN) tokenizer $(DATA)/compare/dataset $(DATA)/compare/tokenizer
	OMP_NUM_THREADS=1 $(MMMGEN) train --config configs/tutorial-recipe.yaml --dataset $(DATA)/tutorial/dataset \
		--tokenizer $(DATA)/tutorial/tokenizer --output-dir runs/compare-tutorial --max-minutes $(COMPARE_MINUTES) --max-eval-windows 300 --resume --report-to none & \
	OMP_NUM_THREADS=1 $(MMMGEN) train --config configs/default-model.yaml --dataset $(DATA)/compare/dataset \
		--tokenizer $(DATA)/compare/tokenizer --output-dir runs/compare-mmmgen --max-minutes $(COMPARE_MINUTES) --max-eval-windows 300 --resume --report-to none & \
	wait
	for r in tutorial mmmgen; do d=$$([ $$r = tutorial ] && echo tutorial || echo compare); \
		$(MMMGEN) evaluate --model runs/compare-$$r --dataset $(DATA)/$$d/dataset --samples 8 --free-samples 4 --write-card || exit 1; done
	$(PY) scripts/compare_card.py runs/compare-tutorial runs/compare-mmmgen $(MODEL_RUN)/README.md $(SHIPPED)/README.md

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
