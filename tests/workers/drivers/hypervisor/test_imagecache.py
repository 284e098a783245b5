"""The per-node image cache: fetch once, atomically, checksums verified."""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from workers.drivers.hypervisor.imagecache import ChecksumMismatch, ImageCache, ImageCacheError

DATA = [bytes([i]) * 65536 for i in range(32)]  # 2 MiB in 64 KiB chunks
MD5 = hashlib.md5(b"".join(DATA), usedforsecurity=False).hexdigest()
SHA512 = hashlib.sha512(b"".join(DATA)).hexdigest()


def test_two_concurrent_spawns_fetch_once(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "cache")
    opened = []
    lock = threading.Lock()

    def open_stream() -> Iterator[bytes]:
        with lock:
            opened.append(1)
        for chunk in DATA:
            time.sleep(0.005)  # a slow download: the other thread arrives meanwhile
            yield chunk

    results = []
    start = threading.Barrier(2)

    def spawn() -> None:
        start.wait()
        results.append(cache.fetch("img-1", open_stream, checksum=MD5, os_hash_algo="sha512", os_hash_value=SHA512))

    threads = [threading.Thread(target=spawn) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 1
    assert sorted(r.fetched for r in results) == [False, True]
    assert {r.path for r in results} == {str(tmp_path / "cache" / "img-1")}
    assert Path(results[0].path).read_bytes() == b"".join(DATA)
    assert cache.list() == ["img-1"]
    assert not list((tmp_path / "cache").glob(".*.part"))
    # a later spawn never opens the stream
    hit = cache.fetch("img-1", lambda: pytest.fail("must not download again"))
    assert hit.fetched is False and hit.size == len(b"".join(DATA))


@pytest.mark.parametrize("kw", [{"checksum": "0" * 32},
                                {"os_hash_algo": "sha512", "os_hash_value": "0" * 128}])
def test_bad_checksum_leaves_no_file(tmp_path: Path, kw: dict) -> None:
    cache = ImageCache(tmp_path)
    with pytest.raises(ChecksumMismatch):
        cache.fetch("img-2", lambda: iter(DATA), **kw)
    assert not cache.has("img-2")
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []
    # a correct retry works
    assert cache.fetch("img-2", lambda: iter(DATA), checksum=MD5).fetched is True


def test_stream_failure_leaves_no_file(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path)

    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("store went away")

    with pytest.raises(OSError):
        cache.fetch("img-3", broken)
    assert not cache.has("img-3")
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []


def test_unsafe_ids_and_remove(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path)
    for bad in ("../etc/passwd", "a/b", "", ".hidden"):
        with pytest.raises(ImageCacheError):
            cache.fetch(bad, lambda: iter(DATA))
    cache.fetch("img-4", lambda: iter(DATA))
    assert cache.remove("img-4") is True
    assert cache.remove("img-4") is False


def test_lock_holds_across_processes(tmp_path: Path) -> None:
    """Two agent processes on one node share the cache directory: the file lock serialises them."""
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from workers.drivers.hypervisor.imagecache import ImageCache\n"
        "def slow():\n"
        "    print('opened', flush=True)\n"
        "    for i in range(20):\n"
        "        time.sleep(0.01)\n"
        "        yield b'x' * 1000\n"
        "r = ImageCache(sys.argv[1]).fetch('img-p', slow)\n"
        "print('fetched' if r.fetched else 'hit', flush=True)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[-1] for o in outs) == ["fetched", "hit"]
    assert sum(o.count("opened") for o in outs) == 1
    assert (tmp_path / "img-p").stat().st_size == 20000


def test_prune_keeps_images_in_use_and_recent_ones(tmp_path: Path) -> None:
    import os

    cache = ImageCache(tmp_path)
    for name in ("used", "old", "new"):
        cache.fetch(name, lambda: iter(DATA))
    stale = tmp_path / ".crashed.abc.part"
    stale.write_bytes(b"x")
    week_ago = time.time() - 7 * 86400
    for name in ("used", "old", ".crashed.abc.part"):
        os.utime(tmp_path / name, (week_ago, week_ago))
    assert cache.prune({"used"}) == ["old"]
    assert cache.list() == ["new", "used"]
    assert not stale.exists()
