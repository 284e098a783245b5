"""Bootstrap's demo image."""
from __future__ import annotations

import logging
from collections.abc import Iterable

from apps.identity.policy import Actor
from apps.images.models import Image
from apps.images.services.data import image_upload
from apps.images.services.images import image_create

log = logging.getLogger(__name__)

# ---- bootstrap: the demo image ----------------------------------------------------------------

DEMO_IMAGE_NAME = "demo-blank"


def image_demo_ensure(*, actor: Actor, name: str = DEMO_IMAGE_NAME) -> Image | None:
    """Bootstrap's demo image, made once: a public, blank 1 GiB qcow2 disk made by ``qemu-img`` (it
    boots nothing on a real hypervisor; the libvirt test-driver nodes of the embedded cloud need no
    more). Returns None, with a log line, where qemu-img is not installed."""
    import shutil
    import subprocess
    import tempfile

    existing = Image.objects.filter(name=name, owner=actor.project_id).first()
    if existing is not None and existing.status == Image.ACTIVE:
        return existing
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        log.warning("no qemu-img: bootstrap makes no demo image (install qemu-utils)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/demo.qcow2"
        subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", path, "1G"], check=True)
        image = existing or image_create(
            actor=actor, name=name, disk_format="qcow2", container_format="bare", visibility=Image.PUBLIC,
            min_disk=1, properties={"description": "Blank 1 GiB qcow2 disk made by bootstrap (no operating system)"})

        def chunks() -> Iterable[bytes]:
            with open(path, "rb") as fh:
                while block := fh.read(1 << 20):
                    yield block

        return image_upload(actor=actor, image_id=image.id, chunks=chunks())
