"""Shared fixtures: tiny networks built in memory, and the path of the real IMDB archive."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz"


@pytest.fixture(scope="session")
def imdb_archive() -> Path:
    """The real IMDB archive: $IMDB_DATA, else ../shared/data/aclImdb_v1.tar.gz; skip if absent."""
    path = Path(os.environ.get("IMDB_DATA", ARCHIVE))
    if not path.exists():
        pytest.skip(f"IMDB archive not found at {path}; set IMDB_DATA")
    return path
