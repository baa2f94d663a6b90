# Two entry points for a fresh machine (see README): `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/aclImdb_v1.tar.gz
BUNDLE ?= models/default

SERVE_VENV := .venv-serve
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve evaluate test docs bench train

# serving gets its own environment from requirements/serve.txt alone: no torch
$(SERVE_VENV)/.installed: requirements/serve.txt
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install --quiet --upgrade pip
	$(SERVE_VENV)/bin/pip install --quiet -r requirements/serve.txt
	touch $@

$(BIN)/.installed: requirements/serve.txt requirements/train.txt requirements/score.txt requirements/ray.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

## serve: set up, then serve the shipped model on http://$(HOST):$(PORT)
serve: $(SERVE_VENV)/.installed
	SENTIMENT_MODEL_DIR=$${SENTIMENT_MODEL_DIR:-$(BUNDLE)} $(SERVE_VENV)/bin/python -m app --host $(HOST) --port $(PORT)

## evaluate: score a bundle's ONNX graph on the full IMDB test set
evaluate: $(BIN)/.installed
	$(BIN)/python -m training.evaluate --bundle $(BUNDLE) --data $(DATA)

## test: set up, then build the docs, lint and run the whole test suite
test: $(BIN)/.installed docs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	IMDB_DATA=$(DATA) $(BIN)/python -m pytest

## docs: build the documentation site into site/; a broken link, anchor or page fails it
docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

## train: train the default configuration and write runs/default/bundle
train: $(BIN)/.installed
	$(BIN)/python -m training.train --config configs/default.toml --data $(DATA)

## bench: every benchmark (model, service, training, hostile, load); writes benchmarks/results/
bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks all --data $(DATA) --bundle $(BUNDLE)
