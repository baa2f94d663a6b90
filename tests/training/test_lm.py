"""The forward language model: its batches, its training step, its ONNX graph and the proofs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from model.bundle import onnx_session
from training.export import ExportError
from training.lm import LMConfig, WordLanguageModel, batches, perplexity, token_log_probs, windows
from training.lm_corpus import START_ID, sample_test_reviews
from training.lm_export import build_lm_onnx, verify_lm_export, zero_state

CONFIG = LMConfig(vocab_size=60, embed_dim=8, hidden_size=32, cutoffs=(10, 30), dropout=0.0)


def _model(seed: int = 0) -> WordLanguageModel:
    torch.manual_seed(seed)
    model = WordLanguageModel(CONFIG)
    model.round_to_half()
    return model.eval()


def _reviews(count: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, CONFIG.vocab_size, rng.integers(1, 30)) for _ in range(count)]


def test_batches_shift_by_one_and_mask_padding() -> None:
    reviews = [np.array([5, 6, 7]), np.array([8])]
    inputs, targets, mask = next(batches(reviews, 2, None))
    assert inputs.tolist() == [[START_ID, 8, 0], [START_ID, 5, 6]]  # sorted by length, padded at the end
    assert mask.sum() == 4  # every token is predicted once
    assert sorted(targets[mask].tolist()) == [5, 6, 7, 8]


def test_windows_read_each_review_from_its_start_with_the_state_carried() -> None:
    """Truncated BPTT: every token predicted once, and the outputs window by window (state
    carried) equal the whole batch's at once, so training reads reviews as scoring does."""
    model, reviews = _model(), _reviews(6)
    inputs, _, mask = next(batches(reviews, 6, None))
    with torch.no_grad():
        whole, _ = model(inputs)
        pieces, predicted = [], 0
        for window_inputs, _, window_mask, state in windows(reviews, 6, 4, None):
            outputs, after = model(window_inputs, state.get())
            state.set(after)
            pieces.append(outputs)
            predicted += int(window_mask.sum())
    assert len(pieces) == -(-inputs.shape[1] // 4) and predicted == int(mask.sum())
    torch.testing.assert_close(torch.cat(pieces, dim=1)[mask], whole[mask], atol=1e-6, rtol=0)


def test_token_log_probs_keep_order_and_equal_the_full_distribution() -> None:
    model, reviews = _model(), _reviews(5)
    scores = token_log_probs(model, reviews)
    assert [len(s) for s in scores] == [len(r) for r in reviews]
    ids = torch.tensor(np.concatenate([[START_ID], reviews[2]]))[None]
    with torch.no_grad():
        full = model.log_probs(model(ids)[0][0])
    expected = full[torch.arange(len(reviews[2])), torch.tensor(reviews[2])].numpy()
    np.testing.assert_allclose(scores[2], expected, atol=1e-5)
    assert 1 < perplexity(scores) < 10 * CONFIG.vocab_size


def test_a_training_step_lowers_the_loss() -> None:
    model = WordLanguageModel(CONFIG)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs, targets, mask = next(batches([np.array([3, 4, 5, 3, 4, 5])] * 4, 4, 0))
    losses = []
    for _ in range(20):
        outputs, _ = model(inputs)
        loss = -model.target_log_probs(outputs[mask], targets[mask]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2


def test_onnx_graph_equals_pytorch_whole_and_one_step_at_a_time(tmp_path) -> None:
    model = _model()
    path = tmp_path / "model.onnx"
    proto = build_lm_onnx(model)
    onnx.save(proto, str(path))
    assert {i.name for i in proto.graph.input} == {"token_ids", "h", "c"}
    report = verify_lm_export(model, onnx_session(path), _reviews(4))
    assert report["torch_vs_onnx"] <= 1e-5 and report["stepwise_vs_prefix"] <= 1e-5
    # float16 initializers: the stored weights are the rounded network's, bit for bit
    assert all(
        t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer if t.name.endswith("_f16")
    )


def test_a_batch_of_equal_prompts_gives_equal_rows(tmp_path) -> None:
    model = _model()
    path = tmp_path / "model.onnx"
    onnx.save(build_lm_onnx(model), str(path))
    session = onnx_session(path)
    ids = np.tile(np.array([[START_ID, 4, 9, 2]]), (3, 1))
    log_probs, h, _ = session.run(None, {"token_ids": ids, **zero_state(3, CONFIG.hidden_size)})
    assert log_probs.shape == (3, 4, CONFIG.vocab_size) and h.shape == (1, 3, CONFIG.hidden_size)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(log_probs[0], log_probs[2])


def test_verification_fails_on_a_graph_of_other_weights(tmp_path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(build_lm_onnx(_model(seed=1)), str(path))
    with pytest.raises(ExportError):
        verify_lm_export(_model(seed=2), onnx_session(path), _reviews(2))


def test_the_test_sample_takes_both_halves() -> None:
    reviews = [np.array([i]) for i in range(10)]
    assert [int(r[0]) for r in sample_test_reviews(reviews, 4)] == [0, 2, 5, 7]
    assert len(sample_test_reviews(reviews, 0)) == 10


def test_train_then_export_as_a_user_runs_them(tmp_path) -> None:
    """training.lm then training.lm_export on a tiny IMDB copy: a bundle with a card."""
    import json

    from tests.training.synthetic import tiny_lm_run
    from training import lm_export

    tokenizer = tiny_lm_run(tmp_path)
    lm_export.main(
        [
            "--checkpoint",
            str(tmp_path / "run" / "lm.pt"),
            "--output",
            str(tmp_path / "bundle"),
            "--tokenizer",
            tokenizer,
            "--test-reviews",
            "4",
            "--parity-reviews",
            "2",
        ]
    )
    card = json.loads((tmp_path / "bundle" / "model_card.json").read_text())
    assert card["training"]["steps"] == 3 and card["metrics"]["test_reviews"] == 4
    assert card["parity"]["torch_vs_onnx"] <= 1e-5
    assert (tmp_path / "bundle" / "MODEL_CARD.md").read_text().startswith("# imdb-lstm-lm")
    assert (tmp_path / "bundle" / "tokenizer.json").read_bytes() == Path(tokenizer).read_bytes()
