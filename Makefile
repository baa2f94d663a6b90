# Two entry points for a fresh machine (see README): `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/aclImdb_v1.tar.gz
BUNDLE ?= models/default

.PHONY: run test lint bench train clean-venv

$(BIN)/.installed: requirements/serve.txt requirements/train.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

## run: set up, then evaluate the shipped model's ONNX graph on the full IMDB test set
run: $(BIN)/.installed
	$(BIN)/python -m training.evaluate --bundle $(BUNDLE) --data $(DATA)

## test: set up, then lint and run the whole test suite
test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	IMDB_DATA=$(DATA) $(BIN)/python -m pytest

## train: train the default configuration and write runs/default/bundle
train: $(BIN)/.installed
	$(BIN)/python -m training.train --config configs/default.toml --data $(DATA)

## bench: training tokens/s and ONNX time per review
bench: $(BIN)/.installed
	$(BIN)/python -m bench.pipeline --data $(DATA) --bundle $(BUNDLE)
