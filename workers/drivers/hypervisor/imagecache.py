"""A compute node's cache of Glance images: each image is fetched once and shared by every instance
disk made from it (instance disks are qcow2 overlays on the cached file).

``ImageCache(root).fetch(image_id, open_stream, ...)`` returns the cached file's path. The data comes
from ``open_stream()``, a caller-supplied callable returning an iterable of ``bytes`` chunks (e.g. the
image store's reader); it is only called when the image is not cached yet, so a cache hit costs no
download at all. Chunks are written to a temporary file in the cache directory while their md5 and
sha512 (or the given ``os_hash_algo``) are computed, and the file is renamed into place only when the
checksums match — a reader never sees a half-written or corrupt image. A per-image file lock
(``fcntl.flock`` on ``<root>/.locks/<id>.lock``) makes concurrent fetches of one image, from threads or
from processes, wait for the first one and then reuse its file.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ImageCacheError(RuntimeError):
    """The image could not be cached (bad id, stream error)."""


class ChecksumMismatch(ImageCacheError):
    """The downloaded data does not match the checksum Glance recorded; nothing was kept."""


@dataclass(frozen=True)
class CachedImage:
    image_id: str
    path: str
    size: int
    fetched: bool  # True when this call downloaded it, False on a cache hit


class ImageCache:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ".locks").mkdir(exist_ok=True)

    def path_for(self, image_id: str) -> Path:
        if not _SAFE_ID.match(image_id):
            raise ImageCacheError(f"unsafe image id {image_id!r}")
        return self.root / image_id

    def has(self, image_id: str) -> bool:
        return self.path_for(image_id).is_file()

    @contextlib.contextmanager
    def _lock(self, image_id: str) -> Iterator[None]:
        fd = os.open(self.root / ".locks" / f"{image_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def fetch(self, image_id: str, open_stream: Callable[[], Iterable[bytes]], *, checksum: str | None = None,
              os_hash_algo: str | None = None, os_hash_value: str | None = None) -> CachedImage:
        """The cached image's path, downloading it first if needed.

        ``checksum`` is Glance's md5 hex digest; ``os_hash_algo``/``os_hash_value`` its multihash
        (normally sha512). Both are verified when given; on a mismatch the partial file is removed and
        ``ChecksumMismatch`` raised."""
        final = self.path_for(image_id)
        with self._lock(image_id):
            if final.is_file():
                os.utime(final)  # last used now: ``prune`` keeps recently used images
                return CachedImage(image_id, str(final), final.stat().st_size, fetched=False)
            md5 = hashlib.md5(usedforsecurity=False) if checksum else None
            multi = None
            if os_hash_value:
                algo = (os_hash_algo or "sha512").lower()
                if algo not in hashlib.algorithms_available:
                    raise ImageCacheError(f"unknown hash algorithm {algo!r}")
                multi = hashlib.new(algo)
            fd, tmp = tempfile.mkstemp(prefix=f".{image_id}.", suffix=".part", dir=self.root)
            size = 0
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in open_stream():
                        if not chunk:
                            continue
                        out.write(chunk)
                        size += len(chunk)
                        if md5 is not None:
                            md5.update(chunk)
                        if multi is not None:
                            multi.update(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                if md5 is not None and md5.hexdigest() != checksum.lower():
                    raise ChecksumMismatch(f"image {image_id}: md5 {md5.hexdigest()} != expected {checksum}")
                if multi is not None and multi.hexdigest() != os_hash_value.lower():
                    raise ChecksumMismatch(f"image {image_id}: {multi.name} mismatch")
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            return CachedImage(image_id, str(final), size, fetched=True)

    def remove(self, image_id: str) -> bool:
        """Drop an image from the cache (the caller makes sure no overlay still uses it)."""
        with self._lock(image_id):
            try:
                self.path_for(image_id).unlink()
            except FileNotFoundError:
                return False
            return True

    def list(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_file() and not p.name.startswith("."))

    def prune(self, in_use: set[str], *, older_than_s: float = 86400) -> list[str]:
        """Remove cached images no instance uses (``in_use``: image ids backing this node's disks) and
        not touched for ``older_than_s`` seconds; returns the removed ids. Partial files left by a
        crashed fetch are removed too once that old."""
        removed: list[str] = []
        cutoff = time.time() - older_than_s
        for p in list(self.root.iterdir()):
            if not p.is_file():
                continue
            if p.name.startswith("."):
                if p.name.endswith(".part") and p.stat().st_mtime < cutoff:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                continue
            if p.name in in_use or p.stat().st_mtime >= cutoff:
                continue
            with self._lock(p.name):
                if p.exists() and p.name not in in_use:
                    p.unlink()
                    removed.append(p.name)
        return removed
