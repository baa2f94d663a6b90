"""Tests for model.inputs.pad_batch."""

from __future__ import annotations

import numpy as np
import pytest

from model.inputs import pad_batch


def test_pad_batch_pads_at_the_end_to_the_longest() -> None:
    ids, lengths = pad_batch([[5, 6, 7], [8], [9, 10]])
    assert ids.shape == (3, 3)
    assert lengths.shape == (3,)
    assert ids.dtype == np.int64
    assert lengths.dtype == np.int64
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 0, 0], [9, 10, 0]])
    np.testing.assert_array_equal(lengths, [3, 1, 2])


def test_pad_batch_uses_pad_id() -> None:
    ids, lengths = pad_batch([[1], [2, 3, 4]], pad_id=-7)
    np.testing.assert_array_equal(ids, [[1, -7, -7], [2, 3, 4]])
    np.testing.assert_array_equal(lengths, [1, 3])


def test_pad_batch_single_sequence_has_no_padding() -> None:
    ids, lengths = pad_batch([(4, 2)])
    np.testing.assert_array_equal(ids, [[4, 2]])
    np.testing.assert_array_equal(lengths, [2])


def test_pad_batch_keeps_large_ids() -> None:
    big = 2**40
    ids, _ = pad_batch([[big, 1]])
    assert int(ids[0, 0]) == big


def test_pad_batch_rejects_empty_batch() -> None:
    with pytest.raises(ValueError, match="at least one"):
        pad_batch([])


def test_pad_batch_rejects_empty_sequence() -> None:
    with pytest.raises(ValueError, match="at least one"):
        pad_batch([[1, 2], []])
