"""Every write of block storage: validation, policy, quota, the state machine (``states``), and the
work on storage nodes enqueued on commit (``workers.storage`` on the queue ``storage.<host>``). One
module per resource (``volumes``, ``snapshots``, ``attachments``, ``volume_types``, ``backends``,
``quotas``; what they share in ``common``); this package re-exports their public functions.

The storage agent reports back through ``backend_report``, ``volume_created``/``volume_create_failed``,
``volume_deleted``/``volume_delete_failed``, ``volume_extended``/``volume_extend_failed``,
``snapshot_created``/``snapshot_create_failed``, ``snapshot_deleted``/``snapshot_delete_failed``, and
for an upload to an image (``volume_upload_to_image``) ``volume_upload_finish`` (the node streamed its
copy into the image through the image API; checked, then ``volume_uploaded``) or
``volume_upload_failed``. Each report takes the reporting node's ``host``: a report on a volume that is
not on that node's backend changes nothing (workers/storage_control.py passes it). ``volume_created`` and
``snapshot_created`` return a ``Created``: ``DISCARD`` when the row is gone (deleted while the node made
its file), and the task then tells the node to remove that file.

Attachments (for the compute side): ``volume_reserve`` (available → reserved, one attachment row),
``volume_attaching`` (reserved → attaching while the node connects it), ``volume_attach`` (→ in-use,
the attachment gets its server, host and device), ``volume_unreserve`` (a failed attach: back to
available), ``volume_begin_detaching`` (in-use → detaching), ``volume_roll_detaching`` (a failed
detach: in-use again) and ``volume_detach`` (the attachment goes; detaching → available, or in-use
while others remain). Cinder's legacy ``os-attach``/``os-detach`` actions only record an attachment:
``volume_attach_record``/``volume_detach_record``; its attachments API (3.27) ``attachment_create``
(reserved), ``attachment_update`` (a connector: attaching), ``attachment_complete`` (in-use) and
``attachment_delete``.
"""
from __future__ import annotations

from apps.volumes.services.attachments import (
    Connector,
    attachment_complete,
    attachment_create,
    attachment_delete,
    attachment_update,
    volume_attach,
    volume_attach_record,
    volume_attaching,
    volume_begin_attaching,
    volume_begin_detaching,
    volume_detach,
    volume_detach_record,
    volume_reserve,
    volume_roll_attaching,
    volume_roll_detaching,
    volume_unreserve,
)
from apps.volumes.services.backends import (
    backend_report,
)
from apps.volumes.services.common import (
    Created,
)
from apps.volumes.services.quotas import (
    volume_quota_defaults_update,
    volume_quota_delete,
    volume_quota_update,
)
from apps.volumes.services.snapshots import (
    snapshot_create,
    snapshot_create_failed,
    snapshot_created,
    snapshot_delete,
    snapshot_delete_failed,
    snapshot_deleted,
    snapshot_force_delete,
    snapshot_metadata_item_delete,
    snapshot_metadata_item_set,
    snapshot_metadata_set,
    snapshot_reset_status,
    snapshot_update,
    snapshot_update_status,
)
from apps.volumes.services.uploads import (
    UPLOAD_CONTAINER_FORMATS,
    UPLOAD_DISK_FORMATS,
    UPLOAD_VISIBILITIES,
    VolumeUpload,
    volume_upload_failed,
    volume_upload_finish,
    volume_upload_to_image,
    volume_uploaded,
)
from apps.volumes.services.volume_types import (
    volume_type_create,
    volume_type_default,
    volume_type_delete,
    volume_type_extra_spec_delete,
    volume_type_extra_specs_set,
    volume_type_update,
)
from apps.volumes.services.volumes import (
    volume_create,
    volume_create_failed,
    volume_created,
    volume_delete,
    volume_delete_failed,
    volume_deleted,
    volume_extend,
    volume_extend_failed,
    volume_extended,
    volume_metadata_item_delete,
    volume_metadata_item_set,
    volume_metadata_set,
    volume_set_bootable,
    volume_update,
)

__all__ = [
    "UPLOAD_CONTAINER_FORMATS",
    "UPLOAD_DISK_FORMATS",
    "UPLOAD_VISIBILITIES",
    "Connector",
    "Created",
    "VolumeUpload",
    "attachment_complete",
    "attachment_create",
    "attachment_delete",
    "attachment_update",
    "backend_report",
    "snapshot_create",
    "snapshot_create_failed",
    "snapshot_created",
    "snapshot_delete",
    "snapshot_delete_failed",
    "snapshot_deleted",
    "snapshot_force_delete",
    "snapshot_metadata_item_delete",
    "snapshot_metadata_item_set",
    "snapshot_metadata_set",
    "snapshot_reset_status",
    "snapshot_update",
    "snapshot_update_status",
    "volume_attach",
    "volume_attach_record",
    "volume_attaching",
    "volume_begin_attaching",
    "volume_begin_detaching",
    "volume_create",
    "volume_create_failed",
    "volume_created",
    "volume_delete",
    "volume_delete_failed",
    "volume_deleted",
    "volume_detach",
    "volume_detach_record",
    "volume_extend",
    "volume_extend_failed",
    "volume_extended",
    "volume_metadata_item_delete",
    "volume_metadata_item_set",
    "volume_metadata_set",
    "volume_quota_defaults_update",
    "volume_quota_delete",
    "volume_quota_update",
    "volume_reserve",
    "volume_roll_attaching",
    "volume_roll_detaching",
    "volume_set_bootable",
    "volume_type_create",
    "volume_type_default",
    "volume_type_delete",
    "volume_type_extra_spec_delete",
    "volume_type_extra_specs_set",
    "volume_type_update",
    "volume_unreserve",
    "volume_update",
    "volume_upload_failed",
    "volume_upload_finish",
    "volume_upload_to_image",
    "volume_uploaded",
]
