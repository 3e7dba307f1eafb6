"""Where an import reads from (a path, the bytes of an upload, or an open binary file) and its SHA-256."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

# `bytes` is the file's content (an upload); `str` and paths name a file on disk.
ImportSource = bytes | str | os.PathLike[str] | BinaryIO

_CHUNK = 1 << 20


def source_name(source: ImportSource) -> str:
    """How messages name the file."""
    if isinstance(source, bytes):
        return "<uploaded file>"
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(source, "name", "<file>"))


@contextmanager
def open_binary(source: ImportSource) -> Iterator[BinaryIO]:
    """The source as a binary file positioned at its start; files opened here are closed afterwards."""
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    elif isinstance(source, str | os.PathLike):
        with Path(source).open("rb") as file:
            yield file
    else:
        source.seek(0)
        yield source


def file_sha256(source: ImportSource) -> str:
    """Hex SHA-256 of the file's bytes: the same file imported twice has the same hash."""
    digest = hashlib.sha256()
    with open_binary(source) as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
