"""What a compute node reads of a server's Cinder volumes to build its domain: each volume's file
(``apps.volumes.selectors.volume_connection``) and the device it is at in the guest."""
from __future__ import annotations

from dataclasses import dataclass

from apps.compute import states
from apps.compute.models import BlockDeviceMapping, Instance
from apps.core.errors import NotFound
from apps.identity.models import Project, User
from apps.identity.policy import Actor


@dataclass(frozen=True)
class VolumeDisk:
    volume_id: str
    path: str
    format: str
    target: str  # "vda"
    boot_index: int | None


def volume_disks_for_node(*, instance: Instance) -> list[VolumeDisk]:
    """The server's volumes as disks, the root (boot index 0) first; a volume being detached is left
    out (its detach removes it from the domain). A volume with no file on any backend is a NotFound."""
    from apps.volumes import selectors as volume_selectors

    actor = Actor(user=User(id=instance.user_id or "nova"), project=Project(id=instance.project_id),
                  roles=frozenset({"admin", "member"}), system=True)
    disks = []
    rows = BlockDeviceMapping.objects.filter(instance=instance).exclude(status=states.BDM_DETACHING).order_by("id")
    for bdm in sorted(rows, key=lambda b: (b.boot_index != 0, b.device_name or "", b.id)):
        try:
            connection = volume_selectors.volume_connection(actor=actor, volume_id=bdm.volume_id)
        except NotFound:
            raise NotFound(f"Volume {bdm.volume_id} of instance {instance.id} could not be found.") from None
        data = connection["data"]
        target = "vda" if bdm.boot_index == 0 else (bdm.device_name or "").rsplit("/", 1)[-1]
        disks.append(VolumeDisk(volume_id=bdm.volume_id, path=data["path"], format=data.get("format", "qcow2"),
                                target=target, boot_index=bdm.boot_index))
    return disks


def is_volume_backed(*, instance: Instance) -> bool:
    return BlockDeviceMapping.objects.filter(instance=instance, boot_index=0).exists()
