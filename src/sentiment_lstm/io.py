"""Files in and out: atomic writes, and the readers of text, JSONL and CSV input.

Every reader raises InputError with a one-line message that names the file and the place.
"""

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


def read_jsonl_texts(path: str) -> list[str]:
    """The "text" field of each non-blank line, every line a JSON object with a string there."""
    texts = []
    for i, line in enumerate(read_lines(path), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or "text" not in row:
            raise InputError(f'{path}: line {i} is not a JSON object with a "text" field')
        if not isinstance(row["text"], str):
            raise InputError(f'{path}: line {i}: "text" is {type(row["text"]).__name__}, '
                             "not a string")
        texts.append(row["text"])
    return texts


def read_texts(path: str | None, jsonl: bool = False) -> list[str]:
    """Reviews from a file (one per line, or JSONL with a "text" field) or stdin ("-")."""
    if jsonl or (path or "").endswith(".jsonl"):
        return read_jsonl_texts(path or "-")
    return read_lines(path)
