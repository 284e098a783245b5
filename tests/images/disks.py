"""Real disk images for tests that need an image's data: the images API inspects what it stores
(Glance's image_format_enforcement), so bytes that merely pretend to be a qcow2 are refused."""
from __future__ import annotations

import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=8)
def qcow2_bytes(size: str = "1M") -> bytes:
    """A blank qcow2 disk of virtual ``size`` made by qemu-img (about 200 KiB whatever the size)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
        return path.read_bytes()
