"""The model runtime's prediction results (its traces: test_trace.py)."""

from __future__ import annotations

import dataclasses

from app.runtime import PredictionResult


def test_prediction_as_dict_is_dataclasses_asdict_without_shared_values() -> None:
    result = PredictionResult("positive", 0.75, {"negative": 0.25, "positive": 0.75}, 12, False)
    body = result.as_dict()
    assert body == dataclasses.asdict(result)
    assert list(body) == [field.name for field in dataclasses.fields(result)]
    body["probabilities"]["positive"] = 0.0  # a response's dict is its own: the result is not touched
    assert result.probabilities["positive"] == 0.75
