"""Glance v2 bodies: images, members, the JSON schemas clients read, and version discovery."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.core import pagination
from apps.images.models import Image, ImageMember, ImageTask
from apps.images.selectors import Page
from apps.images.services import CONTAINER_FORMATS, DISK_FORMATS

VERSION_ID = "v2.16"
# Every v2 minor version Glance has had; the newest is CURRENT, the others SUPPORTED.
MINOR_VERSIONS = [f"v2.{n}" for n in range(16, -1, -1)]


def _time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def image_out(image: Image) -> dict[str, Any]:
    body: dict[str, Any] = dict(image.properties)
    body.update({
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "visibility": image.visibility,
        "protected": image.protected,
        "os_hidden": image.os_hidden,
        "owner": image.owner,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "tags": list(image.tags),
        "created_at": _time(image.created_at),
        "updated_at": _time(image.updated_at),
        "self": f"/v2/images/{image.id}",
        "file": f"/v2/images/{image.id}/file",
        "schema": "/v2/schemas/image",
    })
    return body


def images_out(page: Page) -> dict[str, Any]:
    return {"images": [image_out(i) for i in page.images], "schema": "/v2/schemas/images",
            **pagination.first_next_links("/v2/images", page.query, page.next_marker)}


def member_out(member: ImageMember) -> dict[str, Any]:
    return {"created_at": _time(member.created_at), "updated_at": _time(member.updated_at),
            "image_id": member.image_id, "member_id": member.member, "status": member.status,
            "schema": "/v2/schemas/member"}


def versions_out(base_url: str) -> dict[str, Any]:
    href = base_url.rstrip("/") + "/v2/"
    return {"versions": [{"id": v, "status": "CURRENT" if v == VERSION_ID else "SUPPORTED",
                          "links": [{"rel": "self", "href": href}]} for v in MINOR_VERSIONS]}


# ---- JSON schemas (GET /v2/schemas/...) ------------------------------------------------------

def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


IMAGE_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "description": "An identifier for the image",
           "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
    "name": _nullable("string", maxLength=255, description="Descriptive name for the image"),
    "status": {"type": "string", "readOnly": True, "description": "Status of the image",
               "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                        "pending_delete", "deactivated"]},
    "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"],
                   "description": "Scope of image accessibility"},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
    "checksum": _nullable("string", readOnly=True, maxLength=32, description="md5 hash of image contents."),
    "os_hash_algo": _nullable("string", readOnly=True, maxLength=64,
                              description="Algorithm to calculate the os_hash_value"),
    "os_hash_value": _nullable("string", readOnly=True, maxLength=128,
                               description="Hexdigest of the image contents using the algorithm in os_hash_algo."),
    "owner": _nullable("string", maxLength=255, description="Owner of the image"),
    "size": _nullable("integer", readOnly=True, description="Size of image file in bytes"),
    "virtual_size": _nullable("integer", readOnly=True, description="Virtual size of image in bytes"),
    "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS],
                         "description": "Format of the container"},
    "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS], "description": "Format of the disk"},
    "created_at": {"type": "string", "readOnly": True, "description": "Date and time of image registration"},
    "updated_at": {"type": "string", "readOnly": True, "description": "Date and time of the last image modification"},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
             "description": "List of strings related to the image"},
    "direct_url": {"type": "string", "readOnly": True,
                   "description": "URL to access the image file kept in external store"},
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
    "self": {"type": "string", "readOnly": True, "description": "An image self url"},
    "file": {"type": "string", "readOnly": True, "description": "An image file url"},
    "stores": {"type": "string", "readOnly": True, "description": "Store in which image data resides."},
    "schema": {"type": "string", "readOnly": True, "description": "An image schema url"},
    "locations": {"type": "array", "description": "A set of URLs to access the image file kept in external store",
                  "items": {"type": "object", "required": ["url", "metadata"],
                            "properties": {"url": {"type": "string", "maxLength": 255},
                                           "metadata": {"type": "object"},
                                           "validation_data": {"type": "object"}}}},
    "kernel_id": _nullable("string", is_base=False, description="ID of image stored in Glance that should be "
                           "used as the kernel when booting an AMI-style image."),
    "ramdisk_id": _nullable("string", is_base=False, description="ID of image stored in Glance that should be "
                            "used as the ramdisk when booting an AMI-style image."),
    "architecture": {"type": "string", "is_base": False, "description": "Operating system architecture"},
    "os_distro": {"type": "string", "is_base": False, "description": "Common name of operating system distribution"},
    "os_version": {"type": "string", "is_base": False, "description": "Operating system version"},
    "instance_uuid": {"type": "string", "is_base": False, "description": "ID of instance used to create this image."},
}

IMAGE_LINKS = [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
               {"rel": "describedby", "href": "{schema}"}]


def image_schema() -> dict[str, Any]:
    return {"name": "image", "properties": IMAGE_PROPERTIES, "additionalProperties": {"type": "string"},
            "links": IMAGE_LINKS}


def images_schema() -> dict[str, Any]:
    return {"name": "images",
            "properties": {"images": {"type": "array", "items": image_schema()},
                           "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


MEMBER_PROPERTIES: dict[str, Any] = {
    "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
    "image_id": {"type": "string", "description": "An identifier for the image",
                 "pattern": IMAGE_PROPERTIES["id"]["pattern"]},
    "created_at": {"type": "string", "description": "Date and time of image member creation"},
    "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
    "status": {"type": "string", "enum": ["pending", "accepted", "rejected"],
               "description": "The status of this image member"},
    "schema": {"type": "string", "readOnly": True},
}


def member_schema() -> dict[str, Any]:
    return {"name": "member", "properties": MEMBER_PROPERTIES}


def members_schema() -> dict[str, Any]:
    return {"name": "members", "properties": {"members": {"type": "array", "items": member_schema()},
                                              "schema": {"type": "string"}},
            "links": [{"rel": "describedby", "href": "{schema}"}]}


def task_out(task: ImageTask) -> dict[str, Any]:
    return {"id": task.id, "type": task.type, "status": task.status, "owner": task.owner,
            "image_id": task.image_id, "request_id": task.request_id, "user_id": task.user_id,
            "input": task.input, "result": task.result, "message": task.message,
            "created_at": _time(task.created_at), "updated_at": _time(task.updated_at),
            "expires_at": None, "deleted_at": None, "deleted": False}
