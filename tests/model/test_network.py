"""The network against its equations, and padded batches against reviews read alone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from model.config import POOLINGS, RECURRENT_CELLS, ModelConfig
from model.network import LockedDropout, SentimentClassifier, make_direction, pool, reverse_padded
from model.transformer import sinusoidal_positions

# every encoder: the recurrent cells in one or two directions, the Transformer in its one
ENCODERS = [(cell, bidirectional) for cell in RECURRENT_CELLS for bidirectional in (False, True)]
ENCODERS.append(("transformer", False))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference_direction(cell: str, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """One direction written out from the textbook equations, in float64 numpy: [T, I] -> [T, H]."""
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b_ih, b_hh = params["bias_ih_l0"], params["bias_hh_l0"]
    hidden_size = w_hh.shape[1]
    h, c, outputs = np.zeros(hidden_size), np.zeros(hidden_size), []
    for x_t in x:
        if cell in ("lstm", "peephole"):
            wi, wf, wg, wo = np.split(w_ih @ x_t + b_ih + w_hh @ h + b_hh, 4)
            p_i, p_f, p_o = np.split(params["peephole"], 3) if cell == "peephole" else (0, 0, 0)
            i = sigmoid(wi + p_i * c)
            f = sigmoid(wf + p_f * c)
            c = f * c + i * np.tanh(wg)
            o = sigmoid(wo + p_o * c)  # the output gate's peephole sees the new cell state
            h = o * np.tanh(c)
        elif cell == "gru":
            xr, xz, xn = np.split(w_ih @ x_t + b_ih, 3)
            hr, hz, hn = np.split(w_hh @ h + b_hh, 3)
            r, z = sigmoid(xr + hr), sigmoid(xz + hz)
            n = np.tanh(xn + r * hn)
            h = (1 - z) * n + z * h
        else:
            h = np.tanh(w_ih @ x_t + b_ih + w_hh @ h + b_hh)
        outputs.append(h)
    return np.stack(outputs)


@pytest.mark.parametrize("cell", RECURRENT_CELLS)
def test_each_cell_matches_its_equations(cell: str) -> None:
    torch.manual_seed(1)
    direction = make_direction(cell, input_size=5, hidden_size=4)
    with torch.no_grad():
        for parameter in direction.parameters():
            parameter.uniform_(-0.8, 0.8)  # large enough that every term, peepholes too, matters
    x = torch.randn(2, 7, 5)
    out, _ = direction(x)
    params = {name: p.detach().double().numpy() for name, p in direction.named_parameters()}
    for row in range(2):
        expected = reference_direction(cell, params, x[row].double().numpy())
        np.testing.assert_allclose(out[row].detach().numpy(), expected, atol=1e-5)


def test_peephole_weights_change_the_result() -> None:
    torch.manual_seed(2)
    direction = make_direction("peephole", 3, 4)
    x = torch.randn(1, 6, 3)
    before, _ = direction(x)
    with torch.no_grad():
        direction.peephole.add_(1.0)
    after, _ = direction(x)
    assert (before - after).abs().max() > 1e-3


def test_reverse_padded_reverses_within_length_and_is_an_involution() -> None:
    x = torch.arange(8.0).reshape(2, 4, 1)
    lengths = torch.tensor([4, 2])
    reversed_x = reverse_padded(x, lengths)
    assert reversed_x[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    assert torch.equal(reverse_padded(reversed_x, lengths), x)


def test_pooling_ignores_padding() -> None:
    # one review of length 2 padded to 3 with a huge value at the pad position
    outputs = torch.tensor([[[1.0, 10.0], [3.0, 20.0], [99.0, 99.0]]])
    lengths = torch.tensor([2])
    assert pool(outputs, lengths, "max", hidden_size=1).tolist() == [[3.0, 20.0]]
    assert pool(outputs, lengths, "mean", hidden_size=1).tolist() == [[2.0, 15.0]]
    # last: forward half at the last real token, backward half at the first token
    assert pool(outputs, lengths, "last", hidden_size=1).tolist() == [[3.0, 10.0]]
    assert pool(outputs, lengths, "concat", hidden_size=1).shape == (1, 6)


@pytest.mark.parametrize(
    ("cell", "bidirectional", "num_layers", "pooling"),
    [
        (*encoder, layers, pooling)
        for encoder, layers, pooling in itertools.product(ENCODERS, (1, 2), POOLINGS)
    ],
)
def test_padded_batch_equals_each_review_alone(
    cell: str, bidirectional: bool, num_layers: int, pooling: str
) -> None:
    torch.manual_seed(3)
    config = ModelConfig(vocab_size=40, embed_dim=8, hidden_size=5, num_layers=num_layers,
                         bidirectional=bidirectional, cell=cell, pooling=pooling, num_heads=2)  # fmt: skip
    model = SentimentClassifier(config).eval()
    lengths = torch.tensor([7, 3, 1, 5])
    ids = torch.randint(2, 40, (4, 7))
    for row, length in enumerate(lengths):
        ids[row, length:] = 0
    with torch.no_grad():
        batched = model(ids, lengths)
        alone = torch.cat([model(ids[r : r + 1, :n], lengths[r : r + 1]) for r, n in enumerate(lengths)])
        # the pad id must not matter either: fill pads with real words
        noisy = torch.where(ids == 0, torch.full_like(ids, 9), ids)
        batched_noisy_pads = model(noisy, lengths)
    assert (batched - alone).abs().max() < 1e-6
    assert (batched - batched_noisy_pads).abs().max() < 1e-6
    assert batched.shape == (4, 2)


def test_sinusoidal_positions_follow_the_paper() -> None:
    positions = sinusoidal_positions(50, 8)  # [T, E]: sin at even dimensions, cos at odd ones
    assert positions.shape == (50, 8)
    assert torch.equal(positions[0], torch.tensor([0.0, 1.0] * 4))
    t, i = 37, 2  # PE(t, 2i) = sin(t / 10000^(2i / E)), PE(t, 2i + 1) = the cosine
    angle = t / 10000 ** (2 * i / 8)
    assert torch.allclose(
        positions[t, 2 * i : 2 * i + 2], torch.tensor([np.sin(angle), np.cos(angle)]).float()
    )


def test_the_transformer_reads_word_order_through_its_positions() -> None:
    torch.manual_seed(6)
    config = ModelConfig(vocab_size=30, embed_dim=8, hidden_size=16, bidirectional=False,
                         cell="transformer", pooling="mean", num_heads=2, dropout=0.0)  # fmt: skip
    model = SentimentClassifier(config).eval()
    ids, lengths = torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([5])
    with torch.no_grad():
        # mean pooling of attention without positions would not see a reordering at all
        difference = (model(ids, lengths) - model(ids.flip(1), lengths)).abs().max()
    assert difference > 1e-4
    assert sum(p.numel() for p in model.encoder.parameters()) > 0


def test_backward_direction_reads_the_review_from_its_end() -> None:
    torch.manual_seed(4)
    model = SentimentClassifier(ModelConfig(vocab_size=20, embed_dim=4, hidden_size=3, pooling="last"))
    model.eval()
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        encoded = model.encoder(model.embedding(ids), torch.tensor([3]))
        backward = model.encoder.layers[0][1]
        expected, _ = backward(model.embedding(torch.tensor([[7, 6, 5]])))
    assert torch.allclose(encoded[0, 0, 3:], expected[0, -1], atol=1e-6)


def test_locked_dropout_keeps_one_mask_per_review_for_all_time_steps() -> None:
    torch.manual_seed(0)
    dropout = LockedDropout(0.5).train()
    x = torch.ones(3, 9, 40)
    dropped = dropout(x)
    assert set(dropped.unique().tolist()) == {0.0, 2.0}  # kept units scaled by 1 / (1 - p)
    assert torch.equal(dropped, dropped[:, :1].expand_as(dropped))  # the same at every step
    assert not torch.equal(dropped[0], dropped[1])  # but each review draws its own
    assert torch.equal(dropout.eval()(x), x)


def test_word_dropout_removes_every_occurrence_of_a_dropped_word() -> None:
    torch.manual_seed(0)
    model = SentimentClassifier(ModelConfig(vocab_size=50, embed_dim=4, word_dropout=0.5)).train()
    token_ids = torch.tensor([[5, 6, 5, 7, 6, 5, 8, 9]])
    vectors = model.embed(token_ids)[0]
    zero = (vectors == 0).all(dim=1)
    assert zero.any() and not zero.all()  # at p = 0.5 over five words, seed 0 drops some
    for word in token_ids[0].unique():
        at = token_ids[0] == word
        assert zero[at].all() or not zero[at].any(), int(word)  # a word is dropped everywhere or nowhere
    kept = ~zero
    assert torch.allclose(vectors[kept], 2.0 * model.embedding(token_ids)[0][kept])
    assert torch.equal(model.eval().embed(token_ids), model.embedding(token_ids))


def test_locked_dropout_setting_reaches_the_embeddings_and_between_layers() -> None:
    config = ModelConfig(vocab_size=10, num_layers=2, locked_dropout=True)
    model = SentimentClassifier(config)
    assert isinstance(model.embed_dropout, LockedDropout)
    assert isinstance(model.encoder.between_layers, LockedDropout)
    assert isinstance(SentimentClassifier(ModelConfig(vocab_size=10)).embed_dropout, torch.nn.Dropout)
