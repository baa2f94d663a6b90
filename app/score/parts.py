"""A run's output parts: written one at a time, kept when the run stops, joined when it ends.

The parts sit in ``OUTPUT.parts/`` beside the output: part *k* holds rows ``k·part_rows`` to
``(k+1)·part_rows`` of the run's range, written to a temporary name and renamed into place, then
marked finished by its ``.json`` (its row and error counts). ``run.json`` records what the parts
were made from (input, options, model version): ``--resume`` continues only the same run, keeps
every finished part, and scores the rest, so no row is scored twice or skipped. When every part is
there they are joined into the output, and the folder goes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from app.score.formats import ScoreError, Writer

MANIFEST = "run.json"


class Parts:
    """The part files of one run's output."""

    def __init__(self, output: Path, suffix: str) -> None:
        self.output = output
        self.folder = output.with_name(output.name + ".parts")
        self.suffix = suffix

    def open(self, manifest: dict, resume: bool) -> dict[int, dict]:
        """Start the run, or continue it with ``resume``; the finished parts' counts by index."""
        record = self.folder / MANIFEST
        if not record.is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(record, json.dumps(manifest, indent=2))
            return {}
        if not resume:
            raise ScoreError(
                f"{self.folder} holds the parts of an unfinished run: pass --resume to finish it, "
                "or delete the folder to start again"
            )
        before = json.loads(record.read_text())
        differing = sorted(
            key for key in before.keys() | manifest.keys() if before.get(key) != manifest.get(key)
        )
        if differing:
            raise ScoreError(f"{self.folder} was made by another run (it differs in {differing}); delete it")
        return self.finished()

    def path(self, index: int) -> Path:
        """Part ``index``'s file."""
        return self.folder / f"part-{index:06d}{self.suffix}"

    def finished(self) -> dict[int, dict]:
        """Counts of each finished part (its ``.json`` written), by index."""
        return {
            int(marker.stem.removeprefix("part-")): json.loads(marker.read_text())
            for marker in self.folder.glob("part-*.json")
        }

    def commit(self, index: int, write: Callable[[Path], None], counts: dict) -> None:
        """Write part ``index`` with ``write(path)`` under a temporary name, rename it into
        place, then mark it finished with ``counts``: a part cut short is never taken as done."""
        temporary = self.folder / f".part-{index:06d}{self.suffix}.tmp"
        write(temporary)
        os.replace(temporary, self.path(index))
        _write_atomic(self.folder / f"part-{index:06d}.json", json.dumps(counts))

    def join(self, writer: Writer, count: int) -> None:
        """Join parts ``0..count-1`` into the output and remove the folder."""
        missing = [index for index in range(count) if not (self.folder / f"part-{index:06d}.json").is_file()]
        if missing:
            raise ScoreError(
                f"{self.folder}: parts {missing[:5]} are not finished; the output is not written"
            )
        temporary = self.output.with_name(f".{self.output.name}.tmp")
        writer.merge([self.path(index) for index in range(count)], temporary)
        os.replace(temporary, self.output)
        shutil.rmtree(self.folder)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
