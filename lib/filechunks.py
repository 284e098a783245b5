"""A file's bytes as chunks, for the stores that keep blobs as files (lib/imagestore, lib/objectstore)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def file_chunks(path: Path, *, offset: int, length: int | None, chunk_size: int,
                error: type[Exception]) -> Iterator[bytes]:
    """The bytes of ``path`` from ``offset``, ``length`` of them (all when None), in chunks of at most
    ``chunk_size``. The file is opened at once (a missing or unreadable one raises ``error`` here, not at
    the first chunk) and closed when the iterator ends or is closed."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the generator
    except OSError as exc:
        raise error(f"cannot read {path}: {exc}") from exc

    def chunks() -> Iterator[bytes]:
        with fh:
            if offset:
                fh.seek(offset)
            left = length
            while left is None or left > 0:
                data = fh.read(chunk_size if left is None else min(chunk_size, left))
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data

    return chunks()
