"""Tiny model bundles written to a folder, for service tests that need no trained model."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch

from model.bundle import CARD_FILE, ONNX_FILE, TOKENIZER_FILE
from model.config import ModelConfig
from model.network import SentimentClassifier
from model.tokenizer import Tokenizer, Vocabulary, tokenize
from training.export import build_onnx

CORPUS = [
    "a wonderful , moving film with great acting and a superb story",
    "an awful , boring mess . the worst acting i have seen",
    "i loved it ! brilliant and funny , a great great movie",
    "terrible plot , dull characters ; i hated every minute",
]


def make_bundle(
    folder: Path,
    cell: str = "lstm",
    bidirectional: bool = True,
    num_layers: int = 1,
    pooling: str = "concat",
    max_tokens: int = 64,
    seed: int = 0,
) -> tuple[Path, SentimentClassifier, Tokenizer]:
    """Write a random-weight bundle of the given architecture; returns (folder, model, tokenizer).

    A ``transformer`` (with ``bidirectional=False``) has 4 heads and a feed-forward block 6 wide."""
    vocabulary = Vocabulary.build([tokenize(text) for text in CORPUS], max_size=100)
    tokenizer = Tokenizer(vocabulary)
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=len(vocabulary),
        embed_dim=8,
        hidden_size=6,
        num_layers=num_layers,
        bidirectional=bidirectional,
        cell=cell,
        pooling=pooling,
    )
    model = SentimentClassifier(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)  # spread the probabilities so differences show
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(build_onnx(model), str(folder / ONNX_FILE))
    tokenizer.save(folder / TOKENIZER_FILE)
    card = {
        "name": "tiny",
        "version": "test",
        "max_tokens": max_tokens,
        "model_config": config.to_dict(),
        "architecture": f"tiny {cell}",
    }
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder, model, tokenizer


def make_lm_bundle(folder: Path, tokenizer: Tokenizer, seed: int = 0) -> Path:
    """Write a random-weight language-model bundle over ``tokenizer``'s vocabulary."""
    from dataclasses import asdict

    from training.lm import LMConfig, WordLanguageModel
    from training.lm_export import build_lm_onnx

    torch.manual_seed(seed)
    config = LMConfig(len(tokenizer.vocabulary), embed_dim=8, hidden_size=16, cutoffs=(10, 20), dropout=0.0)
    model = WordLanguageModel(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)  # spread the distributions so top-k orders are clear
    model.round_to_half()
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(build_lm_onnx(model.eval()), str(folder / ONNX_FILE))
    tokenizer.save(folder / TOKENIZER_FILE)
    card = {
        "name": "tiny-lm",
        "version": "test",
        "lm_config": asdict(config),
        "metrics": {"test_perplexity": 9.9},
    }
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder
