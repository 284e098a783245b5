"""Helpers of the hypervisor driver tests (their ``make_node``/``driver`` fixtures, real libvirt
test-driver hypervisors, are in tests/workers/conftest.py), and real qemu-img. No database: none of
these tests ask for ``db``, so pytest-django never opens a connection."""
from __future__ import annotations

import shutil
import uuid

import pytest

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) not installed")
needs_genisoimage = pytest.mark.skipif(shutil.which("genisoimage") is None or shutil.which("isoinfo") is None,
                                       reason="genisoimage/isoinfo not installed (system-deps.sh)")


def new_id() -> str:
    return str(uuid.uuid4())
