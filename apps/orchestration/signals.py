"""Token-free signal URLs: what a guest (a wait condition handle's curl), an alarm (a scaling policy's
``alarm_url``) or cfn-signal (a CloudFormation handle's presigned URL) calls without a Keystone token.

A resource that takes signals this way holds a random secret, minted when it is created. Only its
SHA-256 is stored (in the resource's ``data`` under ``KEY``); the plaintext is what the plugin hands
out in its attributes (the handle's ``token``, ``curl_cli``, the CFN handle's Ref). The URL names the
resource (its stack's id and its logical name); the secret travels as ``?token=`` or, as Heat's
``curl_cli`` sends it, in ``X-Auth-Token``. ``services.resource_signal_with_token`` checks it against
that one resource's hash (constant-time), so a secret opens nothing else. A delete clears ``data``, so
the secret dies with the resource.

    {public}/orchestration/v1/signal/{stack_id}/{resource_name}?token={secret}

A plugin mints one in ``create`` with ``issue(context)``::

    secret, url, data = signals.issue(self.context)   # data[KEY] is the hash; keep it in Outcome.data
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote

from django.conf import settings

KEY = "signal_key"  # the secret's SHA-256 in a resource's data
PATH = "/orchestration/v1/signal"


def endpoint(stack_id: str, resource_name: str) -> str:
    """The token-free signal URL of a resource, without its secret (Heat's handle ``endpoint``)."""
    base = settings.STRATUS_PUBLIC_URL.rstrip("/")
    return f"{base}{PATH}/{stack_id}/{quote(resource_name, safe='')}"


def url(stack_id: str, resource_name: str, secret: str) -> str:
    """The URL with its secret: callable as is (a POST, or cfn-signal's PUT)."""
    return f"{endpoint(stack_id, resource_name)}?token={secret}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def issue(context: Any, *, nbytes: int = 32) -> tuple[str, str, dict[str, str]]:
    """A new secret for the resource of ``context`` (a PluginContext): the secret, its URL, and the data
    entry to keep (only the hash)."""
    secret = secrets.token_urlsafe(nbytes)
    return secret, url(context.stack_id, context.resource_name, secret), {KEY: digest(secret)}


def matches(data: dict[str, Any], secret: str | None) -> bool:
    """Whether ``secret`` is the one whose hash ``data`` holds (constant-time; False without one)."""
    stored = data.get(KEY) if isinstance(data, dict) else None
    if not isinstance(stored, str) or not stored or not secret or len(secret) > 256:
        # still compare, so a resource without a secret answers in the same time as a wrong guess
        hmac.compare_digest(digest(secret or ""), "0" * 64)
        return False
    return hmac.compare_digest(digest(secret), stored)
