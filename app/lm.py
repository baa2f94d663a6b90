"""The language model at serving time: a bundle written by ``training.lm_export``, read with
onnxruntime (no torch), and what it is asked: the next words, a text's log-probabilities, and
continuations sampled one token a step with the LSTM state carried between steps.

The graph takes the state ``(h, c)`` and returns it, so a prompt is read once and each new
token costs one LSTM step and one softmax, whatever the prompt's length.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import BundleError, InvalidRequest
from model.bundle import onnx_session
from model.detokenizer import join_tokens
from model.tokenizer import Tokenizer, Vocabulary, tokenize

MODEL_FILE, CARD_FILE, TOKENIZER_FILE = "model.onnx", "model_card.json", "tokenizer.json"
START_ID, UNK_ID = 0, 1  # "<pad>" marks a review's start; "<unk>" is any unknown word
_NEVER = (START_ID, UNK_ID)  # never offered as a next word, never generated


@dataclass(frozen=True)
class Sampling:
    """How each next token is drawn: temperature, then the ``top_k`` most likely (0: all), then
    the smallest set holding ``top_p`` of the probability (nucleus sampling, Holtzman et al. 2020)."""

    temperature: float = 1.0
    top_k: int = 40
    top_p: float = 1.0

    def choose(self, log_probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One token id per row of ``log_probs`` ``[B, V]``."""
        logits = log_probs.astype(np.float64) / self.temperature
        logits[:, _NEVER] = -np.inf
        chosen = np.empty(len(logits), np.int64)
        for row, values in enumerate(logits):
            if 0 < self.top_k < len(values):
                candidates = np.argpartition(values, -self.top_k)[-self.top_k :]
            else:
                candidates = np.flatnonzero(np.isfinite(values))
            candidates = candidates[np.argsort(-values[candidates], kind="stable")]  # most likely first
            weights = np.exp(values[candidates] - values[candidates[0]])
            weights /= weights.sum()
            if self.top_p < 1.0:
                keep = int(np.searchsorted(np.cumsum(weights), self.top_p)) + 1
                candidates, weights = candidates[:keep], weights[:keep] / weights[:keep].sum()
            chosen[row] = candidates[rng.choice(len(candidates), p=weights)]
        return chosen


@dataclass
class Generation:
    """Continuations of one prompt being sampled, ``rows`` at once, one token a :meth:`step`."""

    model: LanguageModel
    prompt_tokens: list[str]
    log_probs: np.ndarray  # [B, V]: the next token's distribution
    state: dict[str, np.ndarray]
    sampling: Sampling
    rng: np.random.Generator
    generated: list[list[int]]

    def step(self) -> np.ndarray:
        """Draw one token per row and read it; returns the ids drawn ``[B]``."""
        chosen = self.sampling.choose(self.log_probs, self.rng)
        log_probs, self.state = self.model.run(chosen[:, None], self.state)
        self.log_probs = log_probs[:, -1]
        for row, token in enumerate(chosen):
            self.generated[row].append(int(token))
        return chosen

    def text(self, row: int = 0) -> str:
        """Row ``row``'s continuation as readable text, to follow the prompt."""
        return join_tokens(self.model.tokens(self.generated[row]), self.prompt_tokens)


class LanguageModel:
    """A loaded LM bundle: its tokenizer, card and onnxruntime session."""

    def __init__(self, folder: Path, tokenizer: Tokenizer, card: dict, session) -> None:
        self.folder, self.tokenizer, self.card, self.session = folder, tokenizer, card, session
        self.hidden_size = int(card["lm_config"]["hidden_size"])
        self.itos = tokenizer.vocabulary.itos

    @classmethod
    def load(cls, folder: Path, vocabulary: Vocabulary, threads: int = 1) -> LanguageModel:
        """Read and warm up the bundle in ``folder``, whose vocabulary must be ``vocabulary`` (the
        classifier's; checked first, before the graph is read); :class:`BundleError` says what is wrong."""
        try:
            card = json.loads((folder / CARD_FILE).read_text())
            tokenizer = Tokenizer.load(folder / TOKENIZER_FILE)
            if tokenizer.vocabulary != vocabulary:
                raise BundleError(f"{folder}: the language model's vocabulary is not the classifier's")
            session = onnx_session(folder / MODEL_FILE, threads=threads)
            model = cls(folder, tokenizer, card, session)
            model.run(np.array([[START_ID]]), model.zero_state(1))
        except BundleError:
            raise
        except (OSError, ValueError, KeyError) as error:
            raise BundleError(f"{folder}: not a language-model bundle ({error})") from error
        except Exception as error:  # onnxruntime's own errors: a graph of another shape
            raise BundleError(f"{folder}: the language model's warm-up failed ({error})") from error
        return model

    @property
    def ref(self) -> dict[str, str]:
        """Name and version, as the API reports them."""
        return {"name": str(self.card.get("name", "lm")), "version": str(self.card.get("version", "0"))}

    def zero_state(self, rows: int) -> dict[str, np.ndarray]:
        """The LSTM state at a review's start."""
        zeros = np.zeros((1, rows, self.hidden_size), np.float32)
        return {"h": zeros, "c": zeros.copy()}

    def run(self, token_ids: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """Log-probabilities ``[B, T, V]`` of the next word after each token, and the state after."""
        log_probs, h, c = self.session.run(None, {"token_ids": token_ids.astype(np.int64), **state})
        return log_probs, {"h": h, "c": c}

    def tokens(self, ids: list[int]) -> list[str]:
        """Token strings of ``ids``."""
        return [self.itos[i] for i in ids]

    def read(self, text: str, cap: int) -> tuple[list[str], list[int], bool]:
        """The last ``cap`` tokens of ``text`` (a prompt is continued from its end), their ids, and
        whether tokens were left out."""
        tokens = tokenize(text)
        kept = tokens[-cap:] if cap else []
        return kept, self.tokenizer.vocabulary.encode(kept), len(kept) < len(tokens)

    def top(self, log_probs: np.ndarray, k: int) -> list[dict]:
        """The ``k`` most likely words of one distribution ``[V]``, never ``<pad>`` or ``<unk>``."""
        values = log_probs.copy()
        values[list(_NEVER)] = -np.inf
        k = min(k, len(values) - len(_NEVER))  # a vocabulary may hold fewer words than asked for
        best = np.argpartition(values, -k)[-k:]
        best = best[np.argsort(-values[best], kind="stable")]
        return [{"token": self.itos[i], "probability": float(np.exp(values[i]))} for i in best]

    def next_words(self, text: str, k: int, cap: int) -> dict:
        """The ``k`` most likely next words after ``text`` (after its last ``cap`` tokens)."""
        tokens, ids, truncated = self.read(text, cap)
        log_probs, _ = self.run(np.array([[START_ID, *ids]]), self.zero_state(1))
        return {"tokens": tokens, "next": self.top(log_probs[0, -1], k), "truncated": truncated}

    def score(self, text: str, top_k: int, cap: int) -> dict:
        """Each token's log-probability given those before it (the first ``cap`` tokens), and
        the text's perplexity; with ``top_k``, the model's guesses at each position."""
        tokens = tokenize(text, cap)
        truncated, tokens = len(tokens) > cap, tokens[:cap]
        if not tokens:
            raise InvalidRequest("the text has no tokens to score")
        ids = self.tokenizer.vocabulary.encode(tokens)
        log_probs, _ = self.run(np.array([[START_ID, *ids[:-1]]]), self.zero_state(1))
        chosen = log_probs[0, np.arange(len(ids)), ids].astype(np.float64)
        items = []
        for position, (token, token_id, log_prob) in enumerate(zip(tokens, ids, chosen, strict=True)):
            item = {
                "token": token,
                "log_prob": float(log_prob),
                "surprisal": float(-log_prob / math.log(2)),
                "unknown": token_id == UNK_ID,
            }
            if top_k:
                item["top"] = self.top(log_probs[0, position], top_k)
            items.append(item)
        mean = float(chosen.mean())
        return {"tokens": items, "perplexity": math.exp(-mean), "mean_log_prob": mean, "truncated": truncated}

    def start(self, prompt: str, rows: int, sampling: Sampling, seed: int, cap: int) -> Generation:
        """Read ``prompt`` (its last ``cap`` tokens) once for ``rows`` continuations."""
        tokens, ids, _ = self.read(prompt, cap)
        prefix = np.tile(np.array([[START_ID, *ids]]), (rows, 1))  # equal rows: one batch, no padding
        log_probs, state = self.run(prefix, self.zero_state(rows))
        return Generation(
            self,
            tokens,
            log_probs[:, -1],
            state,
            sampling,
            np.random.default_rng(seed),
            [[] for _ in range(rows)],
        )
