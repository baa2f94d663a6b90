"""Language-model pretraining: each direction predicts only from what it has read, and the
fine-tuned classifier starts from exactly the pretrained embedding and encoder."""

from __future__ import annotations

import json

import pytest
import torch

from model.bundle import load_card
from model.config import ModelConfig
from model.network import SentimentClassifier
from model.tokenizer import Tokenizer, Vocabulary
from tests.bundles import make_bundle
from tests.training.synthetic import SMALL, VOCAB, random_splits
from training import pretrain, train
from training.build import build_model
from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import load_run_config
from training.data import prepare_data
from training.loop import fit
from training.pretrain import LanguageModel, adaptive_cutoffs, pretraining_summary


def _tiny_lm(cell: str, bidirectional: bool = True) -> LanguageModel:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=50, embed_dim=6, hidden_size=16, bidirectional=bidirectional, cell=cell)
    return LanguageModel(config).eval()


def _log_prob(model: LanguageModel, direction: int, ids: list[int], position: int) -> torch.Tensor:
    """Log-probability of ``ids[position]``, from the state of the review read alone up to it."""
    hidden = model.config.hidden_size
    if direction == 0:  # the forward direction has read ids[:position]
        seen = torch.tensor([ids[:position]])
        state = model.encoder(model.embedding(seen), torch.tensor([position]))[0, -1, :hidden]
    else:  # the backward direction has read ids[position + 1:], from the end
        seen = torch.tensor([ids[position + 1 :]])
        state = model.encoder(model.embedding(seen), torch.tensor([seen.shape[1]]))[0, 0, hidden:]
    return model.softmax[direction].log_prob(state.unsqueeze(0))[0, ids[position]]


@pytest.mark.parametrize("cell", ["lstm", "peephole", "gru", "rnn"])
def test_each_direction_predicts_from_its_own_past_only(cell: str) -> None:
    model = _tiny_lm(cell)
    reviews = [[5, 9, 2, 33, 7, 41, 3], [8, 1, 12, 49]]
    width = max(map(len, reviews))
    token_ids = torch.tensor([r + [0] * (width - len(r)) for r in reviews])
    with torch.no_grad():
        forward_nll, backward_nll, count = model(token_ids, torch.tensor([7, 4]))
        expected_forward = -sum(_log_prob(model, 0, r, t) for r in reviews for t in range(1, len(r)))
        expected_backward = -sum(_log_prob(model, 1, r, t) for r in reviews for t in range(len(r) - 1))
    assert int(count) == 6 + 3
    assert forward_nll.item() == pytest.approx(expected_forward.item(), abs=1e-4)
    assert backward_nll.item() == pytest.approx(expected_backward.item(), abs=1e-4)


def test_unidirectional_model_has_one_loss() -> None:
    model = _tiny_lm("lstm", bidirectional=False)
    losses = model(torch.tensor([[4, 5, 6]]), torch.tensor([3]))
    assert len(losses) == 2 and int(losses[1]) == 2


def test_stacked_bidirectional_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="stacked bidirectional"):
        LanguageModel(ModelConfig(vocab_size=50, num_layers=2, bidirectional=True))


def test_a_transformer_encoder_is_refused() -> None:
    # without a causal mask its attention reads the very word it is asked to predict
    with pytest.raises(ValueError, match="Transformer encoder cannot be pretrained"):
        LanguageModel(ModelConfig(vocab_size=50, cell="transformer", bidirectional=False))


def test_adaptive_cutoffs_follow_word_frequency_ranks() -> None:
    assert adaptive_cutoffs(20000) == [500, 4000]
    for size in (3, 10, 50, 20000):
        cutoffs = adaptive_cutoffs(size)
        assert cutoffs == sorted(set(cutoffs)) and all(0 < c < size for c in cutoffs)


TINY = [
    "--embed-dim",
    "16",
    "--hidden-size",
    "8",
    "--limit-reviews",
    "40",
    "--max-tokens",
    "200",
    "--batch-size",
    "16",
    "--embeddings",
    "random",
    "--threads",
    "2",
]


@pytest.mark.slow
def test_pretrain_then_fine_tune(tmp_path, imdb_archive) -> None:
    lm_dir, run_dir = tmp_path / "lm", tmp_path / "run"
    data = ["--data", str(imdb_archive)]
    pretrain.main([*data, *TINY, "--output", str(lm_dir), "--epochs", "2"])
    checkpoint = lm_dir / "lm.pt"
    records = [json.loads(line) for line in (lm_dir / "lm_metrics.jsonl").read_text().splitlines()]
    assert records[-1]["epoch"] == 2.0 and (lm_dir / "lm_curves.png").is_file()
    assert all(r["forward_perplexity"] > 1 and r["backward_perplexity"] > 1 for r in records)
    # two epochs of a language model learn something: held-out perplexity falls
    assert records[-1]["forward_perplexity"] < records[0]["forward_perplexity"]

    # the classifier starts from exactly the pretrained embedding and encoder
    fine_tune = [*data, *TINY, "--output", str(run_dir), "--init-from", str(checkpoint)]
    overrides = {
        "train.data": str(imdb_archive),
        "train.limit_reviews": 40,
        "train.max_tokens": 200,
        "train.embeddings": "random",
        "train.init_from": str(checkpoint),
        "model.embed_dim": 16,
        "model.hidden_size": 8,
    }
    config = load_run_config(None, overrides)
    tokenizer, splits, _ = prepare_data(config)
    model, note = build_model(config, tokenizer, splits)
    saved = load_checkpoint(checkpoint)["model_state"]
    for name, value in model.state_dict().items():
        if name.startswith(("embedding.", "encoder.")):
            assert torch.equal(value, saved[name]), name
    assert note.startswith("embedding and encoder from the language model")

    train.main([*fine_tune, "--epochs", "1"])
    card = load_card(run_dir / "bundle")
    assert card["training"]["pretraining"]["corpus"]["held_out"] == 8
    assert (run_dir / "bundle" / "pretraining_curves.png").is_file()
    assert "Language-model pretraining" in (run_dir / "bundle" / "MODEL_CARD.md").read_text()

    # a different vocabulary cannot reuse the language model
    with pytest.raises(SystemExit, match="vocabulary differs"):
        train.main([*fine_tune, "--epochs", "1", "--vocab-size", "100"])


@pytest.mark.parametrize("freeze_epochs", [0, 1])
def test_frozen_epochs_train_only_the_head(tmp_path, freeze_epochs: int) -> None:
    config = load_run_config(None, {**SMALL, "train.freeze_epochs": freeze_epochs})
    splits = random_splits()
    model = SentimentClassifier(config.model_config(VOCAB))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, splits, config, tmp_path, resume=False)
    for name, value in model.state_dict().items():
        changed = not torch.equal(value, start[name])
        assert changed == (name.startswith("head.") or not freeze_epochs), name


def test_a_checkpoint_from_before_a_model_field_existed_is_a_valid_start(tmp_path) -> None:
    small = {"model.embed_dim": 6, "model.hidden_size": 4}
    config = load_run_config(None, small)
    tokenizer = Tokenizer(Vocabulary.build([["good", "bad", "film"]], max_size=10))
    model = SentimentClassifier(config.model_config(len(tokenizer.vocabulary)))
    saved = model.config.to_dict()
    for later in ("word_dropout", "locked_dropout"):  # added after the first checkpoints were made
        del saved[later]
    save_checkpoint(
        tmp_path / "old.pt", {"model_state": model.state_dict(), "model_config": saved}, tokenizer.vocabulary
    )
    start = load_run_config(None, {**small, "train.init_from": str(tmp_path / "old.pt")})
    started, note = build_model(start, tokenizer, splits=None)
    assert note == f"from {tmp_path / 'old.pt'}"
    assert torch.equal(started.head.weight, model.head.weight)


def test_a_model_bundle_is_a_valid_start_with_its_vocabulary_and_network(tmp_path) -> None:
    """A new machine has only the committed bundles: training goes on from a bundle's ONNX weights."""
    bundle, shipped, tokenizer = make_bundle(tmp_path / "bundle")
    same = {"model.embed_dim": 8, "model.hidden_size": 6, "train.init_from": str(bundle)}
    started, note = build_model(load_run_config(None, same), tokenizer, splits=None)
    assert note == f"from the bundle {bundle}, version test" and started.training
    for name, value in shipped.state_dict().items():
        assert torch.allclose(started.state_dict()[name], value), name
    assert pretraining_summary(str(bundle)) is None  # a bundle is no language model

    other_words = Tokenizer(Vocabulary.build([["good", "bad", "film"]], max_size=10))
    with pytest.raises(ValueError, match="vocabulary differs"):
        build_model(load_run_config(None, same), other_words, splits=None)
    wider = {**same, "model.hidden_size": 8}
    with pytest.raises(ValueError, match="model config differs"):
        build_model(load_run_config(None, wider), tokenizer, splits=None)
