"""Tests for the pure metric functions in training.evaluate."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import classification_metrics, expected_calibration_error

# true:      1    1    1    0    0     0    1    0
# predicted: 1    1    0    1    1     0    1    0   (threshold 0.5)
# TP = 3, FN = 1, FP = 2, TN = 2
LABELS = [1, 1, 1, 0, 0, 0, 1, 0]
POSITIVE = [0.9, 0.8, 0.3, 0.6, 0.55, 0.1, 0.7, 0.4]


def test_classification_metrics_hand_computed() -> None:
    result = classification_metrics(LABELS, POSITIVE)
    assert result["examples"] == 8
    assert result["accuracy"] == pytest.approx(5 / 8)
    assert result["precision"] == pytest.approx(3 / 5)
    assert result["recall"] == pytest.approx(3 / 4)
    assert result["f1"] == pytest.approx(2 / 3)
    # rows: true neg/pos; columns: predicted neg/pos
    assert result["confusion_matrix"] == [[2, 2], [1, 3]]
    # 13 of the 16 (positive, negative) pairs are ranked correctly
    assert result["roc_auc"] == pytest.approx(13 / 16)
    assert result["ece"] == pytest.approx(expected_calibration_error(np.array(LABELS), np.array(POSITIVE)))


def test_classification_metrics_threshold_is_inclusive() -> None:
    result = classification_metrics([1, 0], [0.5, 0.49])
    assert result["confusion_matrix"] == [[1, 0], [0, 1]]
    assert result["accuracy"] == 1.0


def test_classification_metrics_single_class() -> None:
    result = classification_metrics([0, 0, 0], [0.1, 0.7, 0.2])
    assert result["roc_auc"] is None
    assert result["confusion_matrix"] == [[2, 1], [0, 0]]
    assert result["precision"] == 0.0
    assert result["recall"] == 0.0
    assert result["accuracy"] == pytest.approx(2 / 3)


def test_classification_metrics_results_are_plain_python() -> None:
    result = classification_metrics(LABELS, POSITIVE)
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "ece"):
        assert type(result[key]) is float
    assert all(type(v) is int for row in result["confusion_matrix"] for v in row)


def test_ece_zero_when_certain_and_right() -> None:
    labels = np.array([1, 0, 1, 0])
    positive = np.array([1.0, 0.0, 1.0, 0.0])
    assert expected_calibration_error(labels, positive) == 0.0


def test_ece_zero_when_accuracy_matches_confidence() -> None:
    # ten predictions at confidence 0.7, seven of them right
    labels = np.array([1] * 7 + [0] * 3)
    positive = np.full(10, 0.7)
    assert expected_calibration_error(labels, positive) == pytest.approx(0.0, abs=1e-12)


def test_ece_one_when_certain_and_wrong() -> None:
    assert expected_calibration_error(np.array([0, 1]), np.array([1.0, 0.0])) == pytest.approx(1.0)


def test_ece_hand_computed() -> None:
    labels = np.array([1, 0, 0, 1])
    positive = np.array([0.92, 0.92, 0.17, 0.62])
    # predicted 1, 1, 0, 1; confidence 0.92, 0.92, 0.83, 0.62; correct 1, 0, 1, 1
    # bin [0.90, 0.95): 2/4 * |0.5 - 0.92| = 0.21
    # bin [0.80, 0.85): 1/4 * |1.0 - 0.83| = 0.0425
    # bin [0.60, 0.65): 1/4 * |1.0 - 0.62| = 0.095
    assert expected_calibration_error(labels, positive) == pytest.approx(0.3475)
    # one bin: |0.75 - mean confidence 0.8225|
    assert expected_calibration_error(labels, positive, bins=1) == pytest.approx(0.0725)
