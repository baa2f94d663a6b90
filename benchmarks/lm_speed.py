"""The language model's speed at batch 1: ms per generated token and time to the first token,
against the roofline of one LM step.

One step reads one token and the LSTM state and returns the next word's full distribution:
an input projection ``[E] x [E, 4H]``, a recurrent product ``[H] x [H, 4H]`` and the adaptive
softmax's products (its head, and each cluster's down-projection and output matrix, every
cluster computed since the full distribution is returned). At batch 1 every one of them is a
matrix-vector product, so the bound is their FLOPs at this machine's matrix-vector speed,
measured per product at its own shape (the faster of numpy's BLAS and the roofline's compiled
loop, :mod:`benchmarks.roofline`):

    bound = sum over the step's products of FLOPs / matvec speed at that shape

Element-wise work (gates, log-softmax, the concatenation) and sampling are left out, so the
bound is lower than the truth. The first token's bound is what reading a prompt of P tokens must
do at least: P of the LSTM's products (each token's state needs the one before), and the
softmax's once, for the distribution after the last token:

    first-token bound = P x (input projection + recurrent) + softmax products

Measured, through the service's runtime (:class:`app.lm.LanguageModel`, one onnxruntime
thread as the service runs it): the graph's step alone, a generated token (the step plus
sampling), and the time to the first token after a prompt (reading it in one call, then one
sampling).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from app.lm import LanguageModel, Sampling
from benchmarks.roofline import compiled_matvec_gflops, matvec_gflops
from model.tokenizer import Tokenizer
from training.data import load_imdb

LSTM_PRODUCTS = ("input projection", "recurrent")  # one per token read; the rest, the softmax's


def step_products(card: dict) -> list[tuple[str, int, int]]:
    """(name, rows, cols) of every matrix-vector product of one step: ``y[rows] = W[rows, cols] x``."""
    config = card["lm_config"]
    embed, hidden, vocab = config["embed_dim"], config["hidden_size"], config["vocab_size"]
    cutoffs = [*config["cutoffs"], vocab]
    products = [("input projection", 4 * hidden, embed), ("recurrent", 4 * hidden, hidden)]
    products.append(("softmax head", cutoffs[0] + len(cutoffs) - 1, hidden))
    for i in range(len(cutoffs) - 1):
        width = int(hidden // (config["div_value"] ** (i + 1)))
        products += [
            (f"cluster {i + 1} down", width, hidden),
            (f"cluster {i + 1} out", cutoffs[i + 1] - cutoffs[i], width),
        ]
    return products


def matvec_speed(rows: int, cols: int) -> float:
    """The faster of BLAS's and the compiled loop's GFLOP/s at this shape, one thread."""
    blas = matvec_gflops(rows, cols, 1, steps=500, repeats=5)
    compiled = compiled_matvec_gflops(rows, cols, steps=500, repeats=5) if rows >= cols else None
    return max(blas, compiled or 0.0)


def _ms(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "median": statistics.median(ordered),
        "p10": ordered[len(ordered) // 10],
        "p90": ordered[(9 * len(ordered)) // 10],
        "runs": len(ordered),
    }


def measure(model: LanguageModel, prompts: list[str], new_tokens: int) -> dict:
    """Milliseconds of the graph's step, of a generated token and of the first token."""
    state = model.zero_state(1)
    token = np.array([[5]])
    for _ in range(20):
        model.run(token, state)  # warm-up: thread pool, caches
    graph = []
    for _ in range(300):
        started = time.perf_counter()
        model.run(token, state)
        graph.append(1000 * (time.perf_counter() - started))
    first, per_token, prompt_tokens = [], [], []
    for seed, prompt in enumerate(prompts):
        started = time.perf_counter()
        generation = model.start(prompt, 1, Sampling(), seed, cap=400)
        generation.step()  # the first token: drawn from the prompt's distribution, then read
        first.append(1000 * (time.perf_counter() - started))
        prompt_tokens.append(len(generation.prompt_tokens))
        for _ in range(new_tokens):
            started = time.perf_counter()
            generation.step()
            per_token.append(1000 * (time.perf_counter() - started))
    return {
        "graph_step_ms": _ms(graph),
        "ms_per_token": _ms(per_token),
        "time_to_first_token_ms": _ms(first),
        "prompt_tokens_median": statistics.median(prompt_tokens),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument(
        "--lm-bundle", type=Path, default=Path("models/lm"), help="language-model bundle folder"
    )
    parser.add_argument("--prompts", type=int, default=20, help="test reviews whose first words are prompts")
    parser.add_argument("--prompt-tokens", type=int, default=50, help="words of each prompt")
    parser.add_argument("--new-tokens", type=int, default=50, help="tokens generated after each prompt")


def run(args: argparse.Namespace) -> dict:
    """The figures for ``results/lm.json``."""
    tokenizer = Tokenizer.load(args.lm_bundle / "tokenizer.json")
    model = LanguageModel.load(args.lm_bundle, tokenizer.vocabulary, threads=1)
    reviews = load_imdb(args.data, expect_full=False).test
    step = max(1, len(reviews) // args.prompts)
    prompts = [
        " ".join(tokenizer.tokenize(r.text)[: args.prompt_tokens]) for r in reviews[::step][: args.prompts]
    ]
    products = []
    for name, rows, cols in step_products(model.card):
        speed = matvec_speed(rows, cols)
        products.append({"name": name, "rows": rows, "cols": cols, "flops": 2 * rows * cols, "gflops": speed})

    def ms(chosen: list[dict]) -> float:
        return sum(p["flops"] / (p["gflops"] * 1e9) for p in chosen) * 1000

    bound_ms = ms(products)
    lstm_ms = ms([p for p in products if p["name"] in LSTM_PRODUCTS])
    measured = measure(model, prompts, args.new_tokens)
    first_bound_ms = measured["prompt_tokens_median"] * lstm_ms + (bound_ms - lstm_ms)
    return {
        "model": model.ref,
        "threads": 1,
        "step_flops": sum(p["flops"] for p in products),
        "products": products,
        "bound_ms": bound_ms,
        "first_token_bound_ms": first_bound_ms,
        **measured,
        "ratio_graph": measured["graph_step_ms"]["median"] / bound_ms,
        "ratio_token": measured["ms_per_token"]["median"] / bound_ms,
        "ratio_first_token": measured["time_to_first_token_ms"]["median"] / first_bound_ms,
    }
