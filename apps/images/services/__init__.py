"""Every write to images: validation, Glance's policy, quotas (``images`` count at create,
``image_bytes`` when an upload ends), the status machine and the store.

The status machine is apps/images/states.py's table; anything else is refused. Callers use the
names here (``services.image_create``); the modules of this package hold them by concern:

- ``images``: an image's record (create, JSON-patch update, delete, deactivate, tags)
- ``data``: its data (upload, stage and import: glance-direct and web-download), streamed into the store
- ``members``: sharing with other projects
- ``demo``: bootstrap's demo image
"""
from apps.images.services._common import (
    CONTAINER_FORMATS,
    DISK_FORMATS,
    SERVICE_PROPERTIES,
    VISIBILITIES,
    is_property_key,
    refuse_unwritable,
)
from apps.images.services.data import (
    IMPORT_METHODS,
    ImageFormatRefused,
    StoreFailed,
    UploadAborted,
    image_import,
    image_import_web_download,
    image_stage,
    image_upload,
    image_upload_for_node,
    image_web_download_failed,
    image_web_download_start,
    image_web_download_succeeded,
    image_web_download_write,
)
from apps.images.services.demo import DEMO_IMAGE_NAME, image_demo_ensure
from apps.images.services.images import (
    PatchOperation,
    PatchValue,
    image_create,
    image_deactivate,
    image_delete,
    image_reactivate,
    image_tag_add,
    image_tag_delete,
    image_update,
)
from apps.images.services.members import member_create, member_delete, member_update

__all__ = [
    "CONTAINER_FORMATS",
    "DEMO_IMAGE_NAME",
    "DISK_FORMATS",
    "IMPORT_METHODS",
    "SERVICE_PROPERTIES",
    "VISIBILITIES",
    "ImageFormatRefused",
    "PatchOperation",
    "PatchValue",
    "StoreFailed",
    "UploadAborted",
    "image_create",
    "image_deactivate",
    "image_delete",
    "image_demo_ensure",
    "image_import",
    "image_import_web_download",
    "image_reactivate",
    "image_stage",
    "image_tag_add",
    "image_tag_delete",
    "image_update",
    "image_upload",
    "image_upload_for_node",
    "image_web_download_failed",
    "image_web_download_start",
    "image_web_download_succeeded",
    "image_web_download_write",
    "is_property_key",
    "member_create",
    "member_delete",
    "member_update",
    "refuse_unwritable",
]
