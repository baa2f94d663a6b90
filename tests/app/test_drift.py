"""``python -m app.drift``: a prediction log against the bundle's reference, by PSI and KS."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from app import drift
from model.reference import make_reference, write_reference

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


def _signals(rng, count: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.clip(rng.beta(0.6, 0.6, count) + shift, 0, 1)
    tokens = np.minimum(rng.lognormal(5.3, 0.6, count).astype(int) + 1, 1000)
    unk = rng.beta(1, 60, count)
    return scores, tokens, unk


@pytest.fixture
def bundle(tmp_path):
    rng = np.random.default_rng(0)
    write_reference(tmp_path, make_reference(*_signals(rng, 5000), "synthetic test set"))
    return tmp_path


def _log(path, signals, start: dt.datetime) -> None:
    with path.open("a") as log:
        for index, (score, tokens, unk) in enumerate(zip(*signals, strict=True)):
            moment = start + dt.timedelta(seconds=index)
            entry = {"time": moment.isoformat(), "model_version": "v1", "score": float(score)}
            log.write(json.dumps(entry | {"tokens": int(tokens), "unk_rate": float(unk)}) + "\n")


def _run(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        drift.main(list(argv))
    return exit_.value.code, capsys.readouterr().out


def test_a_log_like_the_reference_has_not_moved(bundle, tmp_path, capsys) -> None:
    log = tmp_path / "p.jsonl"
    _log(log, _signals(np.random.default_rng(1), 2000), NOW)
    code, out = _run(capsys, str(log), "--bundle", str(bundle), "--json")
    rows = json.loads(out)
    assert code == 0 and [row["moved"] for row in rows] == [False, False, False]
    assert all(row["psi"] < 0.05 and row["ks"] < 0.06 for row in rows)


def test_the_signal_that_moved_is_named_and_a_window_can_leave_it_out(bundle, tmp_path, capsys) -> None:
    log = tmp_path / "p.jsonl"
    scores, tokens, unk = _signals(np.random.default_rng(2), 2000)
    _log(log, (scores, tokens, unk * 6), NOW - dt.timedelta(days=1))  # yesterday: many unknown words
    _log(log, _signals(np.random.default_rng(3), 2000), NOW)  # today: as the test set
    code, out = _run(capsys, str(log), "--bundle", str(bundle), "--json")
    moved = {row["signal"]: row["moved"] for row in json.loads(out)}
    assert code == 1 and moved == {"score": False, "tokens": False, "unk_rate": True}
    code, out = _run(capsys, str(log), "--bundle", str(bundle), "--since", NOW.isoformat())
    assert code == 0 and "4000" not in out and "2000 predictions" in out


def test_without_scipy_psi_alone_is_reported(bundle, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(drift, "ks_2samp", None)
    log = tmp_path / "p.jsonl"
    scores, tokens, unk = _signals(np.random.default_rng(4), 2000)
    _log(log, (np.clip(scores * 0.5 + 0.25, 0, 1), tokens, unk), NOW)  # scores squeezed to the middle
    code, out = _run(capsys, str(log), "--bundle", str(bundle))
    assert code == 1 and "PSI only" in out
    line = next(line for line in out.splitlines() if line.startswith("score"))
    assert line.endswith("YES") and " - " in line


def test_nothing_to_compare_is_exit_2(bundle, tmp_path, capsys) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(SystemExit) as exit_:
        drift.main([str(empty), "--bundle", str(bundle)])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        drift.main([str(empty), "--bundle", str(tmp_path / "nowhere")])
    assert exit_.value.code == 2


def test_relative_and_absolute_times() -> None:
    assert drift.parse_time("6h", NOW) == NOW - dt.timedelta(hours=6)
    assert drift.parse_time("2026-12-01T10:00:00", NOW) == NOW - dt.timedelta(hours=2)
    assert drift.psi(np.linspace(0, 1, 1001), np.linspace(0, 1, 500)) < 0.01
