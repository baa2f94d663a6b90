"""The shipped default bundle: complete, small, as accurate as its card says, and exact."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from app.runtime import make_prediction
from model.bundle import load_card
from model.reference import load_reference
from tests.app.test_trace import load, reference_trace
from training.evaluate import evaluate_bundle
from training.export import model_from_onnx

BUNDLE = Path(__file__).resolve().parent.parent / "models" / "default"
REVIEW = (
    "I expected little from this film, but the acting is superb and the story kept me "
    "guessing until the very end. Not perfect - the middle drags - yet I would watch it again."
)


def test_bundle_is_complete_and_small() -> None:
    names = {path.name for path in BUNDLE.iterdir()}
    assert {"model.onnx", "tokenizer.json", "model_card.json", "MODEL_CARD.md"} <= names
    assert sum(path.stat().st_size for path in BUNDLE.iterdir()) <= 15 * 1024 * 1024
    card = load_card(BUNDLE)
    assert hashlib.sha256((BUNDLE / "model.onnx").read_bytes()).hexdigest() == card["onnx"]["sha256"]
    assert card["model_config"]["cell"] == "lstm"
    assert card["metrics"]["test"]["examples"] == 25000
    # the pipeline issue's target is 0.910; the shipped model, chosen on validation accuracy,
    # measures 0.9240 (docs/history.md): this floor guards what was reached
    assert card["metrics"]["test"]["accuracy"] >= 0.923
    assert card["parity"]["torch_vs_onnx"] <= 1e-5 and card["parity"]["alone_vs_batched"] <= 1e-5


def test_bundle_has_its_test_sets_drift_reference() -> None:
    reference = load_reference(BUNDLE)
    assert reference["examples"] == 25000 and reference["source"] == "IMDB test, 25000 reviews"
    quantiles = reference["quantiles"]
    assert 0 <= quantiles["score"][0] < 0.05 and 0.95 < quantiles["score"][-1] <= 1
    assert quantiles["tokens"][-1] == load_card(BUNDLE)["max_tokens"]  # some reviews are cut at the cap
    assert 0 < reference["near_half"] < 0.2  # a confident model: few test scores near 0.5


@pytest.mark.slow
def test_full_test_set_accuracy_through_onnx(imdb_archive) -> None:
    """Re-scores all 25k test reviews through onnxruntime: the card's figure is reproduced."""
    result = evaluate_bundle(BUNDLE, str(imdb_archive))
    assert result["examples"] == 25000
    assert result["accuracy"] >= 0.923
    assert result["accuracy"] == pytest.approx(load_card(BUNDLE)["metrics"]["test"]["accuracy"], abs=1e-9)


def test_served_trace_equals_pytorch_on_the_shipped_weights() -> None:
    served = load(BUNDLE)
    trace = served.trace(REVIEW, max_tokens=400)
    model = model_from_onnx(BUNDLE / "model.onnx")
    with torch.no_grad():
        expected = reference_trace(model, trace["token_ids"])
        logits = model(torch.tensor([trace["token_ids"]]), torch.tensor([len(trace["token_ids"])]))
    for got_layer, want_layer in zip(trace["layers"], expected, strict=True):
        for direction, want in want_layer.items():
            for name, values in want.items():
                got = np.asarray(got_layer[direction]["gates"][name])
                assert np.abs(got - values).max() <= 1e-5, (direction, name)
    assert abs(trace["prediction"].score - float(torch.softmax(logits, 1)[0, 1])) <= 1e-5
    encoded = served.encode(REVIEW)
    assert make_prediction(served.infer([encoded.ids])[0], encoded) == trace["prediction"]


LM_BUNDLE = BUNDLE.parent / "lm"
LM_ANCHOR = BUNDLE.parent.parent / "experiments" / "results" / "lm_anchor.json"


def test_language_model_bundle_is_complete_small_and_shares_the_vocabulary() -> None:
    import json

    names = {path.name for path in LM_BUNDLE.iterdir()}
    assert {"model.onnx", "tokenizer.json", "model_card.json", "MODEL_CARD.md"} <= names
    assert sum(path.stat().st_size for path in LM_BUNDLE.iterdir()) <= 25 * 1000 * 1000  # issue 27's cap
    assert (LM_BUNDLE / "tokenizer.json").read_bytes() == (BUNDLE / "tokenizer.json").read_bytes()
    card = json.loads((LM_BUNDLE / "model_card.json").read_text())
    assert hashlib.sha256((LM_BUNDLE / "model.onnx").read_bytes()).hexdigest() == card["onnx"]["sha256"]
    assert card["parity"]["torch_vs_onnx"] <= 1e-5 and card["parity"]["stepwise_vs_prefix"] <= 1e-5
    assert "<unk>" in card["metrics"]["unk"] and "`<unk>`" in (LM_BUNDLE / "MODEL_CARD.md").read_text()
    # the anchor comparison was measured on this very network: its figure is the card's
    anchor = json.loads(LM_ANCHOR.read_text())
    assert anchor["lstm"]["perplexity"] == card["metrics"]["test_perplexity"]
    assert anchor["lstm"]["config"] == card["lm_config"]


def test_language_model_steps_with_its_state_as_it_reads_a_prefix() -> None:
    """The shipped graph: a review read one token a call, the state carried, gives the
    distributions of reading it whole (what generation relies on)."""
    from app.lm import LanguageModel
    from model.tokenizer import Tokenizer
    from training.lm_corpus import START_ID

    tokenizer = Tokenizer.load(LM_BUNDLE / "tokenizer.json")
    lm = LanguageModel.load(LM_BUNDLE, tokenizer.vocabulary)
    ids = np.array([[START_ID, *tokenizer.encode(REVIEW)]])
    whole, _ = lm.run(ids, lm.zero_state(1))
    state, steps = lm.zero_state(1), []
    for position in range(ids.shape[1]):
        log_probs, state = lm.run(ids[:, position : position + 1], state)
        steps.append(log_probs[0, 0])
    np.testing.assert_allclose(np.exp(np.stack(steps)), np.exp(whole[0]), atol=1e-5, rtol=0)
