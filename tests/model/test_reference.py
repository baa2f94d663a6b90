"""A bundle's drift reference: quantiles of each signal and the share near 0.5, in a small file."""

from __future__ import annotations

import numpy as np
import pytest

from model.reference import LEVELS, REFERENCE_FILE, load_reference, make_reference, write_reference


def test_a_reference_keeps_the_quantiles_and_the_share_near_half(tmp_path) -> None:
    scores = [0.05, 0.45, 0.55, 0.95]
    reference = make_reference(scores, [10, 20, 30, 40], [0.0, 0.1, 0.0, 0.5], "four reviews")
    assert reference["near_half"] == 0.5 and reference["examples"] == 4
    assert all(len(values) == len(LEVELS) for values in reference["quantiles"].values())
    assert reference["quantiles"]["tokens"][0] == 10 and reference["quantiles"]["tokens"][-1] == 40
    assert np.isclose(reference["quantiles"]["score"][500], np.median(scores))
    write_reference(tmp_path, reference)
    assert load_reference(tmp_path) == reference
    assert (tmp_path / REFERENCE_FILE).stat().st_size < 30_000


def test_no_reference_is_none_and_a_broken_one_an_error(tmp_path) -> None:
    assert load_reference(tmp_path) is None
    (tmp_path / REFERENCE_FILE).write_text('{"quantiles": {}}')
    with pytest.raises(ValueError, match=REFERENCE_FILE):
        load_reference(tmp_path)
