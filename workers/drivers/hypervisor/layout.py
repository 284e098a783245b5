"""Where an instance's files live on its compute node: ``<instances_path>/<instance id>/`` holding
``disk`` (qcow2 overlay on the cached image), ``disk.eph0``/``disk.swap`` when the flavor has them,
``disk.config`` (the config drive ISO) and ``console.log`` (the serial console), as Nova lays them out.
Deleting an instance removes the whole directory; the cached base image stays for other instances."""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_UUID = re.compile(r"^[0-9a-fA-F-]{32,36}$")


class _InstanceFile:
    """A file of the instance's directory: read on a layout, its path (a string)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, layout: InstanceLayout, owner: type | None = None) -> str:
        return str(layout.dir / self.name)


@dataclass(frozen=True)
class InstanceLayout:
    instances_path: str
    uuid: str

    def __post_init__(self) -> None:
        if not _UUID.match(self.uuid):
            raise ValueError(f"not an instance id: {self.uuid!r}")

    @property
    def dir(self) -> Path:
        return Path(self.instances_path) / self.uuid

    disk = _InstanceFile("disk")
    ephemeral = _InstanceFile("disk.eph0")
    swap = _InstanceFile("disk.swap")
    config_drive = _InstanceFile("disk.config")
    console_log = _InstanceFile("console.log")

    def create(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        return self.dir

    def remove(self) -> bool:
        """Remove the instance's directory; False when it was already gone."""
        if not self.dir.exists():
            return False
        shutil.rmtree(self.dir)
        return True
