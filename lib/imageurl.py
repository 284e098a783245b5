"""Signed image-data URLs for nodes (issue 16): what lets a compute or storage node read one image's
bytes, or write one image's bytes, through the image API with no credentials of its own.

A URL names one image, one purpose (``read`` or ``write``), the node it was issued to and when it
expires; its signature is an HMAC-SHA256 of those four values under a key only the control tier
holds. Changing any of them (another image, another purpose, a later expiry) breaks the signature,
and the signature is compared in constant time. The signature is a credential: it never travels in the
URL (access logs record request lines), only in the request header ``HEADER``; the URL's query holds
the non-secret fields. Pure functions: no Django, no I/O.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

PURPOSES = ("read", "write")
NODE_PATH = "/image/v2/node/images/{image_id}/file"  # the only endpoint that accepts these signatures
HEADER = "X-Stratus-Image-Signature"  # the only place a signature is accepted from (never the query string)


class Invalid(Exception):
    """The signature does not match what the URL names (tampered, or made for something else)."""


class Expired(Exception):
    """The signature is right but its time is over."""


@dataclass(frozen=True)
class Grant:
    """What a signed URL allows: ``purpose`` on image ``image_id``, for node ``node``, until ``expires``
    (seconds since the epoch)."""
    image_id: str
    purpose: str
    node: str
    expires: int


def _message(grant: Grant) -> bytes:
    # newline-separated: none of the fields may hold one (checked by sign and verify)
    return "\n".join(("stratus-image-url-v1", grant.image_id, grant.purpose, grant.node, str(grant.expires))).encode()


def _checked(grant: Grant) -> None:
    if grant.purpose not in PURPOSES:
        raise Invalid(f"unknown purpose {grant.purpose!r}")
    for value in (grant.image_id, grant.node):
        if not value or "\n" in value or "\r" in value:
            raise Invalid("an empty or multi-line field")


def signature(key: bytes, grant: Grant) -> str:
    """The hex HMAC-SHA256 of ``grant`` under ``key``."""
    _checked(grant)
    return hmac.new(key, _message(grant), hashlib.sha256).hexdigest()


def verify(key: bytes, grant: Grant, given: str, *, now: float) -> None:
    """Raise Invalid unless ``given`` is ``grant``'s signature under ``key`` (constant-time compare),
    then Expired if ``now`` is past ``grant.expires``."""
    expected = signature(key, grant)
    if not isinstance(given, str) or not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise Invalid("the signature does not match")
    if now > grant.expires:
        raise Expired("the URL has expired")


def node_path(image_id: str) -> str:
    return NODE_PATH.format(image_id=image_id)
