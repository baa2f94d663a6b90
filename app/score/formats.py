"""The file formats a batch run reads and writes: JSONL, CSV, Parquet and plain text.

A :class:`Reader` streams an input in chunks of rows (each a list of dicts, or a pyarrow Table
for Parquet) with the value of the text field of each row, checked by
:func:`app.score.scorer.check_text`; a :class:`Writer` writes one chunk with its results as a part
file, and joins the parts into the output. pyarrow is needed for Parquet only, and imported only
then (``pip install -r requirements/score.txt``), so JSONL, CSV and text work in the serving
environment alone.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from app.score.scorer import RESULT_COLUMNS, Invalid, check_text

FORMATS = ("jsonl", "csv", "parquet", "text")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
PART_SUFFIX = {"jsonl": ".jsonl", "csv": ".csv", "parquet": ".parquet"}
# CSV's default field limit (128 KiB) is shorter than some reviews; the service's own text limit
# is a setting, so the reader takes any length
csv.field_size_limit(2**31 - 1)


class ScoreError(ValueError):
    """A run that cannot start or go on as asked (a bad option, input or output); one line."""


def detect(path: str, given: str | None) -> str:
    """The format: ``given``, else by the file's extension (a folder: Parquet)."""
    if given:
        return given
    if Path(path).is_dir():
        return "parquet"
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ScoreError(f"{path}: unknown extension {suffix!r}; pass --format ({', '.join(FORMATS)})")
    return SUFFIXES[suffix]


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.dataset
        import pyarrow.parquet
    except ImportError:
        raise ScoreError(
            "Parquet needs pyarrow, which the serving requirements leave out: "
            "pip install -r requirements/score.txt"
        ) from None
    return pyarrow


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


class Reader:
    """One input file: its row count, its columns, and its rows in chunks from a start row."""

    def __init__(self, path: str, field: str) -> None:
        self.path = path
        self.field = field
        self.columns: list[str] | None = None  # known up front for CSV and Parquet

    def count(self) -> int:
        """Rows in the file."""
        raise NotImplementedError

    def chunks(self, start: int, stop: int, size: int) -> Iterator[tuple[Any, list[str | Invalid]]]:
        """``(rows, values)`` of rows ``start`` to ``stop``, ``size`` at a time."""
        raise NotImplementedError


class TextReader(Reader):
    """One review per line; a line that is not UTF-8 is a row with an error, not a failed run."""

    def count(self) -> int:
        with open(self.path, "rb") as lines:
            return sum(1 for _ in lines)

    def chunks(self, start: int, stop: int, size: int) -> Iterator[tuple[Any, list[str | Invalid]]]:
        with open(self.path, "rb") as lines:
            for chunk in batched(itertools.islice(lines, start, stop), size):
                rows = [{"text": line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")} for line in chunk]
                yield rows, [check_text(row["text"], "text") for row in rows]


class JsonlReader(Reader):
    """One JSON object per line; a line that is not one is a row with an error."""

    def count(self) -> int:
        with open(self.path, "rb") as lines:
            return sum(1 for _ in lines)

    def _row(self, line: bytes) -> tuple[dict, str | Invalid]:
        try:
            row = json.loads(line)
        except UnicodeDecodeError as error:
            return {}, Invalid(f"the line is not UTF-8 (byte {error.start}: {error.reason})")
        except json.JSONDecodeError as error:
            return {}, Invalid(f"the line is not JSON ({error.msg}, column {error.colno})")
        if not isinstance(row, dict):
            return {}, Invalid(f"the line is not a JSON object but {type(row).__name__}")
        if self.field not in row:
            return row, Invalid(f"'{self.field}' is missing (no such field)")
        return row, check_text(row[self.field], self.field)

    def chunks(self, start: int, stop: int, size: int) -> Iterator[tuple[Any, list[str | Invalid]]]:
        with open(self.path, "rb") as lines:
            for chunk in batched(itertools.islice(lines, start, stop), size):
                rows, values = zip(*map(self._row, chunk), strict=True)
                yield list(rows), list(values)


class CsvReader(Reader):
    """A CSV file with a header row; bytes that are not UTF-8 reach the check as surrogates."""

    def __init__(self, path: str, field: str) -> None:
        super().__init__(path, field)
        with self._open() as file:
            self.columns = next(csv.reader(file), [])
        if field not in self.columns:
            raise ScoreError(f"{path}: no column {field!r} in the header {self.columns}; pass --text-field")

    def _open(self):
        return open(self.path, newline="", encoding="utf-8", errors="surrogateescape")

    def count(self) -> int:
        with self._open() as file:
            return max(sum(1 for _ in csv.reader(file)) - 1, 0)

    def chunks(self, start: int, stop: int, size: int) -> Iterator[tuple[Any, list[str | Invalid]]]:
        with self._open() as file:
            rows = csv.DictReader(file)  # a short row's missing cells read as None: "missing"
            for chunk in batched(itertools.islice(rows, start, stop), size):
                yield chunk, [check_text(row[self.field], self.field) for row in chunk]


class ParquetReader(Reader):
    """A Parquet file or a folder of them (one dataset, files in name order)."""

    def __init__(self, path: str, field: str) -> None:
        super().__init__(path, field)
        self.dataset = _pyarrow().dataset.dataset(path, format="parquet")
        self.schema = self.dataset.schema
        self.columns = self.schema.names
        if field not in self.columns:
            raise ScoreError(f"{path}: no column {field!r} in {self.columns}; pass --text-field")

    def count(self) -> int:
        return self.dataset.count_rows()

    def chunks(self, start: int, stop: int, size: int) -> Iterator[tuple[Any, list[str | Invalid]]]:
        pyarrow = _pyarrow()
        pending, held, position = [], 0, 0
        for batch in self.dataset.to_batches(batch_size=size):  # in the dataset's order
            low, high = position, position + batch.num_rows
            position = high
            if high <= start or batch.num_rows == 0:
                continue
            if low >= stop:
                break
            pending.append(batch.slice(max(start - low, 0), min(stop, high) - max(start, low)))
            held += pending[-1].num_rows
            while held >= size:
                table = pyarrow.Table.from_batches(pending, self.schema)
                yield self._chunk(table.slice(0, size))
                rest = table.slice(size)
                pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield self._chunk(pyarrow.Table.from_batches(pending, self.schema))

    def _chunk(self, table) -> tuple[Any, list[str | Invalid]]:
        return table, [check_text(value, self.field) for value in table.column(self.field).to_pylist()]


READERS: dict[str, type[Reader]] = {
    "text": TextReader,
    "jsonl": JsonlReader,
    "csv": CsvReader,
    "parquet": ParquetReader,
}


class Writer:
    """Writes chunks with their results as part files, and joins the parts into the output."""

    suffix = ""

    def __init__(self, reader: Reader, prefix: str) -> None:
        self.added = [prefix + column for column in RESULT_COLUMNS]
        clash = sorted(set(self.added) & set(reader.columns or []))
        if clash:
            raise ScoreError(f"the input already has columns {clash}; pass --prefix (e.g. --prefix pred_)")
        self.reader = reader

    def _merged(self, row: dict, result: dict) -> dict:
        clash = [column for column in self.added if column in row]
        if clash:  # JSONL: only a row itself shows its fields
            raise ScoreError(f"a row already has fields {clash}; pass --prefix (e.g. --prefix pred_)")
        return {
            **row,
            **{name: result[column] for name, column in zip(self.added, RESULT_COLUMNS, strict=True)},
        }

    def write(self, path: Path, rows: Any, results: list[dict]) -> None:
        """One part: ``rows`` with ``results`` added."""
        raise NotImplementedError

    def merge(self, parts: list[Path], output: Path) -> None:
        """The parts joined into ``output``, in order."""
        with open(output, "wb") as joined:
            self._header(joined)
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, joined)

    def _header(self, joined) -> None:
        pass


class JsonlWriter(Writer):
    """JSON Lines, keys in the input's order with the results after them."""

    suffix = ".jsonl"

    def write(self, path: Path, rows: Any, results: list[dict]) -> None:
        with open(path, "wb") as part:
            for row, result in zip(rows, results, strict=True):
                part.write(_json_line(self._merged(row, result)))


def _json_line(row: dict) -> bytes:
    """``row`` as one line of UTF-8 JSON. A text read from undecodable bytes (plain text) holds
    them as lone surrogates: that line is written with ``\\u`` escapes, valid JSON from which
    Python's ``json`` gives the same string back."""
    try:
        return (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(row) + "\n").encode("ascii")


class CsvWriter(Writer):
    """CSV with the input's header (``text`` for plain text) and the result columns."""

    suffix = ".csv"

    def __init__(self, reader: Reader, prefix: str) -> None:
        super().__init__(reader, prefix)
        self.fields = [*(reader.columns or ["text"]), *self.added]

    def _writer(self, file) -> csv.DictWriter:
        return csv.DictWriter(file, self.fields, extrasaction="ignore")

    def write(self, path: Path, rows: Any, results: list[dict]) -> None:
        with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as part:
            writer = self._writer(part)
            for row, result in zip(rows, results, strict=True):
                writer.writerow(self._merged(row, result))

    def _header(self, joined) -> None:
        header = io.StringIO()
        csv.writer(header).writerow(self.fields)
        joined.write(header.getvalue().encode("utf-8", "surrogateescape"))


def result_types(added: list[str]) -> dict:
    """The Arrow type of each added column, by its name."""
    pa = _pyarrow()
    kinds = (pa.string(), pa.float64(), pa.int64(), pa.bool_(), pa.string(), pa.string())
    return dict(zip(added, kinds, strict=True))


def with_results(table: Any, results: list[dict], added: list[str]) -> Any:
    """``table`` with the result columns appended under the names ``added``, typed."""
    pa = _pyarrow()
    for (name, kind), column in zip(result_types(added).items(), RESULT_COLUMNS, strict=True):
        table = table.append_column(name, pa.array([result[column] for result in results], kind))
    return table


class ParquetWriter(Writer):
    """Parquet: the input's columns as they were, the results typed."""

    suffix = ".parquet"

    def schema(self):
        """The output's schema (an empty output still has one)."""
        pa = _pyarrow()
        reader = self.reader
        base = reader.schema if isinstance(reader, ParquetReader) else pa.schema([("text", pa.string())])
        return pa.schema([*base, *result_types(self.added).items()], metadata=base.metadata)

    def write(self, path: Path, rows: Any, results: list[dict]) -> None:
        pa = _pyarrow()
        if isinstance(rows, list):  # plain text: an undecodable byte becomes U+FFFD here
            rows = pa.table({"text": [_valid_utf8(row["text"]) for row in rows]})
        pa.parquet.write_table(with_results(rows, results, self.added), path)

    def merge(self, parts: list[Path], output: Path) -> None:
        parquet = _pyarrow().parquet
        with parquet.ParquetWriter(output, self.schema()) as joined:
            for part in parts:
                joined.write_table(parquet.read_table(part, schema=self.schema()))


def _valid_utf8(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


WRITERS: dict[str, type[Writer]] = {"jsonl": JsonlWriter, "csv": CsvWriter, "parquet": ParquetWriter}
