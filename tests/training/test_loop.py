"""The training loop's wall-clock budget: the schedule follows the clock, training stops when spent."""

from __future__ import annotations

import functools
import math

import pytest

from model.network import SentimentClassifier
from tests.training.synthetic import SMALL, VOCAB, random_splits
from training import loop
from training.config import load_run_config
from training.distributed import World


def _config(**overrides):
    return load_run_config(None, {**SMALL, **overrides})


def test_under_a_budget_the_rate_warms_up_and_anneals_with_the_clock() -> None:
    config = _config(**{"train.minutes": 1.0, "train.warmup_fraction": 0.2, "train.learning_rate": 1.0})
    spent = [0.0]
    model = SentimentClassifier(config.model_config(VOCAB))
    optimizer, scheduler = loop.make_optimizer(model, config, total_steps=10**6, progress=lambda: spent[0])
    rates = {}
    for share in (0.1, 0.2, 0.6, 1.0, 1.5):
        spent[0] = share
        optimizer.step()  # no gradients: changes nothing, but keeps the scheduler's order check quiet
        scheduler.step()  # the step count says nothing here: 10**6 steps are never reached
        rates[share] = optimizer.param_groups[0]["lr"]
    assert rates[0.1] == pytest.approx(0.5)  # half-way through the warm-up
    assert rates[0.2] == pytest.approx(1.0)  # the peak, then a cosine over the rest of the time
    assert rates[0.6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert rates[1.0] == pytest.approx(0.0, abs=1e-12) and rates[1.5] == pytest.approx(0.0, abs=1e-12)


def _fake_clock(monkeypatch) -> None:
    """The budget reads a clock that advances one second per reading."""
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(loop, "Budget", functools.partial(loop.Budget, clock=clock))


def test_a_spent_budget_ends_the_epoch_mid_way_and_training(tmp_path, monkeypatch) -> None:
    _fake_clock(monkeypatch)  # a 0.1-minute budget is spent after a few batches
    config = _config(**{"train.minutes": 0.1, "train.epochs": 5, "train.output": str(tmp_path)})
    model = SentimentClassifier(config.model_config(VOCAB))
    history, seconds = loop.fit(model, random_splits(64), config, tmp_path, resume=False)
    assert len(history) == 1, "the budget ran out in the first epoch: no second one starts"
    assert 0 < history[0]["batches"] < history[0]["batches_per_epoch"] == 16
    assert seconds >= 6.0  # the budget's own count of the training time


def test_a_budgeted_run_resumed_after_its_end_trains_no_more(tmp_path, monkeypatch) -> None:
    _fake_clock(monkeypatch)
    config = _config(**{"train.minutes": 0.1, "train.epochs": 5, "train.output": str(tmp_path)})
    model = SentimentClassifier(config.model_config(VOCAB))
    history, seconds = loop.fit(model, random_splits(64), config, tmp_path, resume=False)
    resumed, seconds_again = loop.fit(model, random_splits(64), config, tmp_path, resume=True)
    assert resumed == history and seconds_again == seconds


def test_under_a_budget_patience_does_not_stop_training(tmp_path) -> None:
    # validation accuracy cannot improve on 4 reviews after the first epoch often; patience 1
    # would stop at epoch 2, while the (large) budget lets the epoch cap end the run
    config = _config(
        **{"train.minutes": 60.0, "train.epochs": 4, "train.patience": 1, "train.output": str(tmp_path)}
    )
    model = SentimentClassifier(config.model_config(VOCAB))
    history, _ = loop.fit(model, random_splits(16), config, tmp_path, resume=False)
    assert len(history) == 4


def test_a_budget_is_refused_under_several_processes() -> None:
    config = _config(**{"train.minutes": 1.0})
    with pytest.raises(ValueError, match="--minutes"):
        loop._check_world(config, World(rank=0, size=2))
