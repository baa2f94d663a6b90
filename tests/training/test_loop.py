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


def test_a_spent_budget_ends_the_epoch_mid_way_and_training(tmp_path, monkeypatch) -> None:
    # a clock that advances one second per reading: a 0.1-minute budget is spent after a few batches
    now = [0.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(loop, "Budget", functools.partial(loop.Budget, clock=clock))
    config = _config(**{"train.minutes": 0.1, "train.epochs": 5, "train.output": str(tmp_path)})
    model = SentimentClassifier(config.model_config(VOCAB))
    history, _ = loop.fit(model, random_splits(64), config, tmp_path, resume=False)
    assert len(history) == 1, "the budget ran out in the first epoch: no second one starts"
    done, total = map(int, history[0]["batches"].split("/"))
    assert 0 < done < total == 16


def test_a_budget_is_refused_under_several_processes() -> None:
    config = _config(**{"train.minutes": 1.0})
    with pytest.raises(ValueError, match="--minutes"):
        loop._check_world(config, World(rank=0, size=2))
