"""Files in and out: atomic writes, and the readers of text, JSONL and CSV input.

Every reader raises InputError with a one-line message that names the file and the place.
"""

import csv
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch


class InputError(ValueError):
    pass


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`.

    A crash at any point leaves either the old file or the new one, never half of one.
    """
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | Path) -> None:
    """Path.write_text, but a crash leaves the old file or the new one, as atomic_save does."""
    _atomic_write(path, lambda f: f.write(text.encode()))


def _atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide runs from co-workers
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def first_line(e: BaseException) -> str:
    """An exception as its first non-blank line (its type's name if it has none): many
    libraries' messages run to many lines, an error here is one."""
    return next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)


def read_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise InputError(f"input file {path} is a directory, not a file")
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    return path.read_bytes()


def read_text(path: str | None) -> str:
    """A UTF-8 file, or stdin for None or "-", decoded whole."""
    raw = sys.stdin.buffer.read() if path in (None, "-") else read_bytes(Path(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise InputError(f"{path or 'stdin'}: line {line} is not valid UTF-8") from e


def read_lines(path: str | None) -> list[str]:
    """The non-blank lines of a UTF-8 file, or of stdin for None or "-". Only \\n, \\r\\n and
    \\r end a line, not every break str.splitlines() knows: reviews hold U+0085 (IMDB's
    ellipsis) and U+2028 inside a line."""
    lines = [ln for ln in re.split(r"\r\n?|\n", read_text(path)) if ln.strip()]
    if not lines:
        raise InputError(f"{path or 'stdin'}: no reviews (the input is empty)")
    return lines


def read_jsonl(path: str, fields: tuple[str, ...] = ("text",),
               strings: tuple[str, ...] = ("text",)) -> list[dict]:
    """One JSON object per non-blank line with every one of `fields`; those named in
    `strings` must hold strings."""
    rows = []
    for i, line in enumerate(read_lines(path), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not all(f in row for f in fields):
            raise InputError(f"{path}: line {i} is not a JSON object with "
                             + " and ".join(f'a "{f}"' for f in fields) + " field")
        for f in strings:
            if f in row and not isinstance(row[f], str):
                raise InputError(f'{path}: line {i}: "{f}" is {type(row[f]).__name__}, '
                                 "not a string")
        rows.append(row)
    return rows


def read_texts(path: str | None, jsonl: bool = False) -> list[str]:
    """Reviews from a file (one per line, or JSONL with a "text" field) or stdin ("-")."""
    if jsonl or (path or "").endswith(".jsonl"):
        return [row["text"] for row in read_jsonl(path or "-")]
    return read_lines(path)


def read_csv(path: str, columns: tuple[str, ...], delimiter: str = ",") -> list[dict]:
    """Rows of a CSV (or TSV) file with a header naming every one of `columns`. csv splits
    the rows itself: a quoted text may span lines, blank ones too, and be longer than csv's
    128 KB default field limit."""
    csv.field_size_limit(2**31 - 1)
    rows = list(csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter=delimiter))
    if not rows or not set(columns) <= set(rows[0]):
        found = ", ".join(rows[0]) if rows else "nothing"
        raise InputError(f"{path}: needs columns {' and '.join(map(repr, columns))}, "
                         f"found {found}")
    return rows


def read_labeled(path: Path, labels: list[str], text_col: str | list[str] = "text",
                 label_col: str = "label") -> tuple[list[str], list[int]]:
    """(texts, label indices) from a CSV (TSV for .tsv) with a header or a JSONL file; the
    text is one column or several joined with a newline. A label is one of `labels`
    (case-insensitive), or its index when the label names are not integers themselves."""
    cols = (text_col,) if isinstance(text_col, str) else tuple(text_col)
    if path.suffix == ".jsonl":
        rows = read_jsonl(str(path), (*cols, label_col), cols)
    else:
        rows = read_csv(str(path), (*cols, label_col), "\t" if path.suffix == ".tsv" else ",")
    names = {name.lower(): i for i, name in enumerate(labels)}
    if not all(re.fullmatch(r"[+-]?\d+", n) for n in labels):
        names |= {str(i): i for i in range(len(labels))}
    texts, ys = [], []
    for i, row in enumerate(rows, 1):
        if row[label_col] is None:
            raise InputError(f"{path}: row {i} has no {label_col!r} value")
        y = str(row[label_col]).strip().lower()
        y = str(int(y)) if re.fullmatch(r"[+-]?\d+", y) else y
        if y not in names:
            raise InputError(f"{path}: row {i} has unknown label {row[label_col]!r} "
                             f"(expected one of {', '.join(names)})")
        texts.append("\n".join(str(row[c]) for c in cols if row[c]))
        ys.append(names[y])
    return texts, ys
