"""The README documents every setting the service reads, and no setting it does not read."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    fields = {f"SENTIMENT_{name.upper()}" for name in Settings.model_fields}
    table = README[README.index("**Settings**") : README.index("**Errors**")]
    documented = set(re.findall(r"`(SENTIMENT_[A-Z_]+)`", table))
    assert fields - documented == set(), "settings missing from the README's table"
    assert documented - fields == set(), "the README's table names settings the service does not read"
    mentioned = set(re.findall(r"SENTIMENT_[A-Z_]+[A-Z]", README))
    assert mentioned <= fields, mentioned - fields
