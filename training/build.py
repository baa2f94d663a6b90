"""The network a run trains, with its starting weights: word vectors, a checkpoint, a language
model or a bundle's ONNX graph."""

from __future__ import annotations

from pathlib import Path

import torch

from model.bundle import ONNX_FILE, load_card, require_vocabulary
from model.config import ModelConfig
from model.network import SentimentClassifier
from model.tokenizer import Tokenizer
from training.checkpoint import check_vocabulary, load_checkpoint
from training.config import RunConfig
from training.data import Splits
from training.distributed import SINGLE, World
from training.embeddings import initial_embeddings
from training.export import model_from_onnx
from training.pretrain import LM_KIND, load_pretrained


def model_from_bundle(folder: Path, model_config: ModelConfig, tokenizer: Tokenizer) -> SentimentClassifier:
    """The network of a bundle's ``model.onnx``, to train on from where it stopped.

    A bundle carries no checkpoint, and a new machine has only the bundles that were committed
    (the shipped model among them); its graph holds every weight and its model config. Its
    vocabulary and network must be this run's: token ids mean nothing to another vocabulary.
    """
    require_vocabulary(folder, tokenizer.vocabulary, "a start needs the same data, vocab_size and min_count")
    model = model_from_onnx(folder / ONNX_FILE)
    if model.config != model_config:
        raise ValueError(
            f"{folder}: its model config differs from this run's ({model.config} vs {model_config})"
        )
    return model.train()


def build_model(
    config: RunConfig, tokenizer: Tokenizer, splits: Splits | None, world: World = SINGLE
) -> tuple[SentimentClassifier, str]:
    """The network with its starting weights (word vectors, or a checkpoint's), and how it started.

    Under torchrun only rank 0 computes word vectors: DDP gives every rank rank 0's weights.
    ``splits`` is read only for word vectors, so a run that starts from saved weights may pass None.
    """
    model_config = config.model_config(len(tokenizer.vocabulary))
    start = config.train.init_from
    if start and Path(start).is_dir():
        # the version too: a folder such as models/default holds another model once one is shipped
        version = load_card(start).get("version", "of no version")
        model = model_from_bundle(Path(start), model_config, tokenizer)
        return model, f"from the bundle {start}, version {version}"
    model = SentimentClassifier(model_config)
    if start:
        saved = load_checkpoint(start)
        if saved.get("kind") == LM_KIND:
            load_pretrained(model, saved, tokenizer, start)
            return model, f"embedding and encoder from the language model {start}"
        check_vocabulary(saved, start, tokenizer.vocabulary)
        if ModelConfig.from_dict(saved["model_config"]) != model_config:  # absent fields: defaults
            raise ValueError(f"{start}: its model config differs from this run's")
        model.load_state_dict(saved["model_state"])
        return model, f"from {start}"
    if not world.is_main:
        return model, "from rank 0"
    if splits is None:
        raise ValueError("word vectors need the training split")
    vectors, embedding_note = initial_embeddings(config, model_config, tokenizer.vocabulary, splits)
    if vectors is not None:
        model.embedding.weight.data.copy_(torch.from_numpy(vectors))
    return model, embedding_note
