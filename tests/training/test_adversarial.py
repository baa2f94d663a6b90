"""Adversarial training on word vectors: the step, the gradients it adds, and its place in training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from model.config import ModelConfig
from model.network import SentimentClassifier
from tests.training.synthetic import SMALL, VOCAB, random_splits
from training import adversarial, loop, train
from training.bundle import render_markdown
from training.checkpoint import load_checkpoint
from training.config import load_run_config
from training.distributed import World

ROOT = Path(__file__).resolve().parents[2]


def _model(seed: int = 0, word_dropout: float = 0.0) -> SentimentClassifier:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=40,
        embed_dim=6,
        hidden_size=5,
        bidirectional=True,
        embed_dropout=0.0,
        dropout=0.0,
        word_dropout=word_dropout,
    )
    return SentimentClassifier(config)


def _sum_loss(labels: torch.Tensor):
    return lambda logits: nn.functional.cross_entropy(logits, labels, reduction="sum")


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    lengths = torch.tensor([7, 3, 5, 1])
    token_ids = torch.randint(2, 40, (4, 7)) * (torch.arange(7) < lengths.unsqueeze(1))  # 0-padded
    return token_ids, lengths, torch.tensor([1, 0, 1, 0])


def test_the_step_has_norm_epsilon_per_review_along_the_gradient() -> None:
    gradient = torch.randn(3, 4, 5)
    gradient[2] = 0.0  # e.g. a review the loss does not depend on
    step = adversarial.perturbation(gradient, 0.7)
    assert step.flatten(1).norm(dim=1)[:2].tolist() == pytest.approx([0.7, 0.7])
    assert torch.equal(step[2], torch.zeros(4, 5))
    cosine = nn.functional.cosine_similarity(step[:2].flatten(1), gradient[:2].flatten(1))
    assert cosine.tolist() == pytest.approx([1.0, 1.0])


def test_the_step_raises_the_loss_more_than_random_steps_of_its_size() -> None:
    model, (token_ids, lengths, labels) = _model(), _batch()
    embedded = model.embedding(token_ids).detach().requires_grad_(True)

    def losses(vectors: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model.classify(vectors, lengths), labels, reduction="none")

    (gradient,) = torch.autograd.grad(losses(embedded).sum(), embedded)
    mask = (torch.arange(7) < lengths.unsqueeze(1)).unsqueeze(2)  # random steps on real tokens only
    with torch.no_grad():
        clean = losses(embedded)
        worst = losses(embedded + adversarial.perturbation(gradient, 0.05))
        generator = torch.Generator().manual_seed(2)
        for _ in range(20):
            noise = torch.randn(embedded.shape, generator=generator) * mask
            assert (losses(embedded + adversarial.perturbation(noise, 0.05)) < worst).all()
    assert (worst > clean).all()


def test_backward_adds_the_gradients_of_the_clean_and_the_adversarial_loss() -> None:
    model, (token_ids, lengths, labels) = _model(), _batch()
    epsilon, scale, loss_of = 0.3, 0.25, _sum_loss(labels)

    # by hand: the direction from the clean loss, then both losses' parameter gradients summed
    parameters = list(model.parameters())
    embedded = model.embedding(token_ids)
    clean = loss_of(model.classify(embedded, lengths))
    clean_grads = torch.autograd.grad(clean, [embedded, *parameters], allow_unused=True)
    step = adversarial.perturbation(clean_grads[0], epsilon)
    worst = loss_of(model.classify(model.embedding(token_ids) + step, lengths))
    worst_grads = torch.autograd.grad(worst, parameters, allow_unused=True)

    logits, clean_loss, adversarial_loss, _ = adversarial.backward(
        model, token_ids, lengths, loss_of, epsilon, scale
    )
    assert clean_loss.item() == pytest.approx(clean.item())
    assert adversarial_loss.item() == pytest.approx(worst.item())
    assert adversarial_loss > clean_loss
    assert torch.allclose(logits, model(token_ids, lengths))
    for parameter, by_clean, by_worst in zip(parameters, clean_grads[1:], worst_grads, strict=True):
        expected = scale * (by_clean + by_worst)
        assert torch.allclose(parameter.grad, expected, atol=1e-6)


def test_both_passes_see_the_same_dropped_words() -> None:
    model, (token_ids, lengths, labels) = _model(word_dropout=0.5), _batch()
    torch.manual_seed(5)
    _, _, adversarial_loss, _ = adversarial.backward(model, token_ids, lengths, _sum_loss(labels), 0.3)
    torch.manual_seed(5)
    embedded = model.embed(token_ids)  # the same draw of dropped words as inside backward
    clean_input = embedded.detach().requires_grad_(True)
    _sum_loss(labels)(model.classify(clean_input, lengths)).backward()
    step = adversarial.perturbation(clean_input.grad, 0.3)
    expected = _sum_loss(labels)(model.classify(embedded.detach() + step, lengths))
    assert adversarial_loss.item() == pytest.approx(expected.item())


def test_a_frozen_embedding_stays_untouched_and_the_rest_learns() -> None:
    model, (token_ids, lengths, labels) = _model(), _batch()
    model.embedding.weight.requires_grad_(False)  # --embedding-lr-scale 0, or a --freeze-epochs epoch
    adversarial.backward(model, token_ids, lengths, _sum_loss(labels), 0.3)
    assert model.embedding.weight.grad is None
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0


def test_training_with_frozen_pretrained_layers_runs_adversarially(tmp_path) -> None:
    config = load_run_config(
        None, {**SMALL, "train.epochs": 2, "train.freeze_epochs": 1, "train.adversarial_epsilon": 1.0}
    )
    torch.manual_seed(3)
    model = SentimentClassifier(config.model_config(VOCAB))
    start = model.embedding.weight.detach().clone()
    history, _ = loop.fit(model, random_splits(), config, tmp_path, resume=False)
    assert [h["epoch"] for h in history] == [1, 2] and all("adversarial_loss" in h for h in history)
    last = load_checkpoint(tmp_path / "checkpoint.pt")["model_state"]  # fit keeps the best
    assert not torch.equal(last["embedding.weight"], start)  # thawed in epoch 2


def test_training_with_epsilon_logs_the_adversarial_loss_and_differs_from_without(tmp_path) -> None:
    trained = {}
    no_dropout = {"model.embed_dropout": 0.0, "model.dropout": 0.0}  # no random draws to differ by
    for epsilon in (0.0, 1.0):
        config = load_run_config(None, {**SMALL, **no_dropout, "train.adversarial_epsilon": epsilon})
        torch.manual_seed(3)
        model = SentimentClassifier(config.model_config(VOCAB))
        output = tmp_path / str(epsilon)
        output.mkdir()
        history, _ = loop.fit(model, random_splits(), config, output, resume=False)
        trained[epsilon] = model.state_dict()
        logged = json.loads((output / "metrics.jsonl").read_text())
        assert ("adversarial_loss" in history[0]) == (epsilon > 0) == ("adversarial_loss" in logged)
    assert history[0]["adversarial_loss"] > history[0]["train_loss"]
    assert not torch.equal(trained[0.0]["head.weight"], trained[1.0]["head.weight"])


def test_epsilon_is_refused_when_negative_or_under_torchrun(tmp_path) -> None:
    with pytest.raises(ValueError, match="adversarial_epsilon must be >= 0"):
        load_run_config(None, {"train.adversarial_epsilon": -0.1})
    config = load_run_config(None, {**SMALL, "train.adversarial_epsilon": 1.0})
    model = SentimentClassifier(config.model_config(VOCAB))
    two = World(rank=0, size=2)
    with pytest.raises(ValueError, match="not supported under torchrun"):
        loop.fit(model, random_splits(), config, tmp_path, resume=False, world=two)


def test_a_later_field_counts_in_the_fingerprint_only_when_set() -> None:
    base = {"train.data": "/nonexistent/aclImdb"}
    fingerprint = train.fingerprint(load_run_config(None, base))
    assert fingerprint == train.fingerprint(load_run_config(None, {**base, "train.adversarial_epsilon": 0.0}))
    assert fingerprint == train.fingerprint(load_run_config(None, {**base, "train.pseudo_soft": False}))
    assert fingerprint != train.fingerprint(load_run_config(None, {**base, "train.adversarial_epsilon": 1.0}))
    assert fingerprint != train.fingerprint(load_run_config(None, {**base, "train.pseudo_soft": True}))
    assert fingerprint != train.fingerprint(load_run_config(None, {**base, "train.epochs": 7}))
    # the model fields added later (word and locked dropout) follow the same rule
    assert fingerprint == train.fingerprint(load_run_config(None, {**base, "model.word_dropout": 0.0}))
    assert fingerprint == train.fingerprint(load_run_config(None, {**base, "model.locked_dropout": False}))
    assert fingerprint != train.fingerprint(load_run_config(None, {**base, "model.word_dropout": 0.1}))
    assert fingerprint != train.fingerprint(load_run_config(None, {**base, "model.locked_dropout": True}))


def test_the_model_card_names_adversarial_training_only_when_used() -> None:
    card = json.loads((ROOT / "models/default/model_card.json").read_text())
    # the shipped run 15: virtual adversarial training in place of adversarial training
    assert card["train_config"]["adversarial_epsilon"] == 0.0 and card["train_config"]["vat_epsilon"] == 1.5
    assert "under the word-vector step of L2 norm 1.5 that changes it most" in render_markdown(card)
    assert "Adversarial training" not in render_markdown(card)
    card["train_config"].update(adversarial_epsilon=2.0, vat_epsilon=0.5)
    assert "moved by the step of L2 norm 2.0 that raises its loss most" in render_markdown(card)
    assert "under the word-vector step of L2 norm 0.5 that changes it most" in render_markdown(card)
    card["train_config"]["vat_epsilon"] = 0.0
    assert "Virtual adversarial" not in render_markdown(card)
    for field in ("adversarial_epsilon", "vat_epsilon"):  # a card from before the fields existed
        del card["train_config"][field]
    assert "Adversarial training" not in render_markdown(card)
    assert "Virtual adversarial" not in render_markdown(card)


def test_the_virtual_step_has_norm_epsilon_on_real_positions_and_moves_the_prediction_most() -> None:
    model, (token_ids, lengths, _) = _model(), _batch()
    embedded = model.embedding(token_ids).detach()
    logits = model.classify(embedded, lengths)
    torch.manual_seed(2)
    classify = lambda vectors: model.classify(vectors, lengths)  # noqa: E731
    step = adversarial.virtual_step(classify, embedded, lengths, logits, epsilon=0.2, xi=0.01)
    assert torch.allclose(step.flatten(1).norm(dim=1), torch.full((4,), 0.2), atol=1e-6)
    padding = torch.arange(7) >= lengths.unsqueeze(1)
    assert step[padding].abs().max() == 0
    assert all(p.grad is None for p in model.parameters())  # only a direction was computed

    def divergences(moved: torch.Tensor) -> torch.Tensor:
        reference = logits.log_softmax(1)
        return (reference.exp() * (reference - model.classify(moved, lengths).log_softmax(1))).sum(1)

    worst = divergences(embedded + step)
    torch.manual_seed(0)
    for _ in range(20):
        noise = adversarial.perturbation(torch.randn_like(embedded) * ~padding.unsqueeze(2), 0.2)
        assert (divergences(embedded + noise) <= worst + 1e-9).all()


def test_backward_adds_the_virtual_adversarial_gradients() -> None:
    model, (token_ids, lengths, labels) = _model(), _batch()
    scale, loss_of = 0.5, _sum_loss(labels)
    # the embedding's gradient comes through the word vectors (below); the rest through the network
    parameters = [p for name, p in model.named_parameters() if name != "embedding.weight"]
    embedded = model.embedding(token_ids)
    logits = model.classify(embedded, lengths)
    clean_grads = torch.autograd.grad(loss_of(logits), parameters, allow_unused=True)
    torch.manual_seed(7)  # the power iteration's random start
    step = adversarial.virtual_step(
        lambda vectors: model.classify(vectors, lengths), embedded.detach(), lengths, logits, 0.3, 0.05
    )
    virtual = adversarial.summed_kl(logits, model.classify(embedded.detach() + step, lengths))
    virtual_grads = torch.autograd.grad(virtual, parameters, allow_unused=True)
    embedding_grad = (
        torch.autograd.grad(
            loss_of(model.classify(model.embedding(token_ids), lengths)), model.embedding.weight
        )[0]
        + torch.autograd.grad(
            adversarial.summed_kl(logits, model.classify(model.embedding(token_ids) + step, lengths)),
            model.embedding.weight,
        )[0]
    )

    torch.manual_seed(7)
    _, clean_loss, adversarial_loss, virtual_loss = adversarial.backward(
        model, token_ids, lengths, loss_of, 0.0, scale, vat_epsilon=0.3, vat_xi=0.05
    )
    assert clean_loss.item() == pytest.approx(loss_of(logits).item())
    assert adversarial_loss.item() == 0 and virtual.item() > 0
    assert virtual_loss.item() == pytest.approx(virtual.item())
    for parameter, by_clean, by_virtual in zip(parameters, clean_grads, virtual_grads, strict=True):
        assert torch.allclose(parameter.grad, scale * (by_clean + by_virtual), atol=1e-6)
    assert torch.allclose(model.embedding.weight.grad, scale * embedding_grad, atol=1e-6)


def test_training_with_vat_logs_its_divergence_and_counts_in_the_fingerprint(tmp_path) -> None:
    base = {**SMALL, "model.embed_dropout": 0.0, "model.dropout": 0.0}
    config = load_run_config(None, {**base, "train.vat_epsilon": 1.0})
    torch.manual_seed(3)
    model = SentimentClassifier(config.model_config(VOCAB))
    history, _ = loop.fit(model, random_splits(), config, tmp_path, resume=False)
    assert history[0]["virtual_adversarial_kl"] > 0 and "adversarial_loss" not in history[0]
    named = {**base, "train.data": "/nonexistent/aclImdb"}  # a fingerprint names the data
    fingerprints = [
        train.fingerprint(load_run_config(None, {**named, **extra}))
        for extra in ({}, {"train.vat_epsilon": 0.0}, {"train.vat_epsilon": 1.0})
    ]
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]
    with pytest.raises(ValueError, match="vat_xi must be > 0"):
        load_run_config(None, {"train.vat_xi": 0.0})
    with pytest.raises(ValueError, match="not supported under torchrun"):
        loop.fit(model, random_splits(), config, tmp_path, resume=False, world=World(rank=0, size=2))


def test_summed_kl_is_kl_of_the_fixed_reference_from_the_other() -> None:
    torch.manual_seed(4)
    reference, other = torch.randn(3, 2, requires_grad=True), torch.randn(3, 2, requires_grad=True)
    p, q = reference.softmax(1), other.softmax(1)
    by_hand = (p * (p.log() - q.log())).sum()
    divergence = adversarial.summed_kl(reference, other)
    assert divergence.item() == pytest.approx(by_hand.item())
    divergence.backward()
    assert reference.grad is None and other.grad.abs().sum() > 0  # the reference is held fixed


def test_the_virtual_passes_replay_the_clean_passs_dropout_masks() -> None:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, embed_dim=6, hidden_size=5, embed_dropout=0.5, dropout=0.5)
    model, (token_ids, lengths, labels) = SentimentClassifier(config).train(), _batch()
    # a step too small to move the prediction: only different masks could make the two differ
    _, _, _, virtual = adversarial.backward(
        model, token_ids, lengths, _sum_loss(labels), 0.0, vat_epsilon=1e-6
    )
    fresh_masks = adversarial.summed_kl(model(token_ids, lengths), model(token_ids, lengths))
    assert virtual.item() < 1e-6 and fresh_masks.item() > 1e-3  # what fresh masks would have given
    # and the generator goes on as if the replays had not happened
    torch.manual_seed(9)
    adversarial.backward(model, token_ids, lengths, _sum_loss(labels), 0.0, vat_epsilon=0.1)
    after = torch.rand(1)
    torch.manual_seed(9)
    model.classify(model.embed(token_ids), lengths)  # the clean pass
    torch.randn(token_ids.shape[0], token_ids.shape[1], config.embed_dim)  # the probe's start
    assert torch.equal(after, torch.rand(1))
