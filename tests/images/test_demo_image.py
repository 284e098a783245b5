"""Bootstrap's demo image (`make run` starts with one): public, active, a real qcow2, made once."""
from __future__ import annotations

import shutil
from typing import Any

import pytest

from apps.identity import services as identity
from apps.images.models import Image
from apps.images.services import DEMO_IMAGE_NAME

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) is not installed")


def test_bootstrap_makes_the_demo_image_once(db: Any, settings: Any, image_store: str) -> None:
    settings.STRATUS_DEMO_IMAGE = True
    kwargs = {"public_url": "http://cloud.test:8000", "admin_password": "a-pass", "demo_password": "d-pass"}
    identity.bootstrap(**kwargs)  # bootstrap itself is under test here, not the seeded cloud
    identity.bootstrap(**kwargs)  # idempotent: still one image

    images = list(Image.objects.filter(name=DEMO_IMAGE_NAME))
    assert len(images) == 1
    image = images[0]
    assert (image.status, image.visibility, image.disk_format) == ("active", "public", "qcow2")
    assert image.size and image.size < 1 << 20 and image.checksum and image.os_hash_value
    assert image.virtual_size == 1 << 30  # read from the qcow2 header while streaming


def test_the_suite_starts_without_it(db: Any, image_store: str) -> None:
    identity.bootstrap(public_url="http://cloud.test:8000", admin_password="a-pass", demo_password="d-pass")
    assert not Image.objects.exists()
