"""Labeled files (CSV, TSV as GLUE ships them, JSONL): one split per file, the text from one
column or several joined with a newline, the label from another.

CSV is read with quoting, so a quoted text may span lines and be of any length; TSV is read
as GLUE's loaders read it, without quoting (a quote is a character; a field holds no tab or
newline).
"""

import csv
import io
import json
import logging
from pathlib import Path

from sentiment_lstm.data.types import DataError, RawTexts
from sentiment_lstm.io import InputError, read_bytes

log = logging.getLogger(__name__)
_LINE = "\0line"  # a JSONL row's line number, under a key no JSON field has
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def file_format(path: str | Path, fmt: str = "auto") -> str:
    """csv, tsv or jsonl: `fmt` unless auto, else from the extension."""
    if fmt != "auto":
        return fmt
    found = FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise DataError(f"{path}: cannot tell the format from the extension "
                        f"{Path(path).suffix!r}; set data.format=csv|tsv|jsonl")
    return found


def text_columns(spec) -> list[str]:
    """data.text_column: one column name, or a list of them."""
    cols = [spec] if isinstance(spec, str) else list(spec)
    if not cols or not all(isinstance(c, str) and c for c in cols):
        raise DataError(f"data.text_column={spec!r} must be a column name or a list of them")
    return cols


def _decode(path: Path) -> str:
    raw = read_bytes(path)
    if not raw.strip():
        raise DataError(f"{path}: the file is empty")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is not part of the first column
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} (byte offset {e.start}) is not valid UTF-8; save the "
                        "file as UTF-8") from e
    if "\x00" in text:
        raise DataError(f"{path}: holds NUL bytes; it is not a text file")
    return text


def _table(path: Path, text: str, fmt: str) -> list[dict]:
    head = text.lstrip()[:1]
    if head in "{[":
        raise DataError(f"{path}: looks like JSON, not {fmt.upper()}; set data.format=jsonl "
                        "(or name it .jsonl)")
    csv.field_size_limit(2**31 - 1)  # a long review is one field, read whole
    opts = ({"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv"
            else {"delimiter": ","})
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), **opts)
        rows = list(reader)
    except csv.Error as e:
        raise DataError(f"{path}: not readable as {fmt.upper()}: {e}") from e
    header = reader.fieldnames or []
    if len(header) == 1:
        other = "\t" if fmt == "csv" else ","
        if other in header[0]:
            hint = "tsv" if fmt == "csv" else "csv"
            raise DataError(f"{path}: one column {header[0]!r}; is it {hint.upper()}? set "
                            f"data.format={hint}")
    return rows


def _jsonl(path: Path, text: str) -> list[dict]:
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            what = "does not look like JSONL" if not rows else "is not valid JSONL"
            raise DataError(f"{path}: {what}: line {i} is not JSON ({e.msg})") from e
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {i} is a JSON {type(row).__name__}, not an object")
        row[_LINE] = i
        rows.append(row)
    return rows


def read_split(path: str | Path, fmt: str, text_column, label_column: str,
               columns_hint: str = "set data.text_column / data.label_column") -> RawTexts:
    """(texts, raw labels) of one file. Rows whose text is empty are dropped with a warning
    (a text-less row teaches nothing and would be scored as a guess)."""
    path = Path(path)
    try:
        fmt = file_format(path, fmt)
        text = _decode(path)
    except InputError as e:  # a missing file, a folder
        raise DataError(str(e)) from e
    rows = _jsonl(path, text) if fmt == "jsonl" else _table(path, text, fmt)
    if not rows:
        raise DataError(f"{path}: no rows (only a header?)")
    cols = text_columns(text_column)
    texts, labels, empty = [], [], 0
    for i, row in enumerate(rows, 1):
        where = f"line {row[_LINE]}" if fmt == "jsonl" else f"row {i}"
        missing = [c for c in [*cols, label_column] if c not in row]
        if missing:
            found = ", ".join(repr(k) for k in row if k not in (_LINE, None))
            raise DataError(f"{path}: {where} has no column {missing[0]!r} (columns found: "
                            f"{found}); {columns_hint}")
        parts = [row[c] for c in cols]
        if any(p is not None and not isinstance(p, str) for p in parts):
            raise DataError(f"{path}: {where}: the text is not a string")
        joined = "\n".join(p for p in parts if p)
        if not joined.strip():
            empty += 1
            continue
        if row[label_column] is None:
            raise DataError(f"{path}: {where} has no {label_column!r} value")
        texts.append(joined)
        labels.append(row[label_column])
    if empty:
        log.warning("%s: dropped %d of %d rows with an empty text", path, empty, len(rows))
    if not texts:
        raise DataError(f"{path}: every row's text is empty")
    return texts, labels
