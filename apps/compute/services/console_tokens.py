"""Console URLs for API clients (Nova's os-remote-consoles, and the os-getVNCConsole/os-getSerialConsole
actions before microversion 2.6): a short-lived, single-use token that a console socket takes instead of a
dashboard session.

``server_remote_console_create`` checks exactly what opening the console checks
(``server_console.server_remote_console_check``: another project's server is unknown, a reader may not,
the instance must run on a node that has such a console), then stores the token's sha256 with the server,
its project and the caller, and answers the URL: the noVNC page (``/console/vnc/?token=``) or the serial
console's websocket (``ws://.../ws/console/serial/?token=``). The socket redeems the token once
(``console_token_redeem``: unused, not expired, for that kind of console) and acts as the caller in the
server's project (``console_token_actor``), so every check is made again when it opens and as access
changes.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.compute.models import ConsoleToken
from apps.compute.services import server_console
from apps.core.errors import BadRequest, Forbidden, NotFound
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.policy import Actor

# (protocol, type) -> the console's kind; Nova's others (spice, rdp, mks, xvpvnc) are not offered here
CONSOLE_TYPES = {("vnc", "novnc"): "vnc", ("serial", "serial"): "serial"}
TOKEN_INVALID = "The console token is invalid, used or expired."


@dataclass(frozen=True)
class RemoteConsole:
    protocol: str
    type: str
    url: str


def console_url(*, kind: str, token: str) -> str:
    """Where a client opens the console with ``token`` (under settings.STRATUS_PUBLIC_URL)."""
    base = str(settings.STRATUS_PUBLIC_URL).rstrip("/")
    if kind == "vnc":
        return f"{base}/console/vnc/?token={quote(token)}"
    scheme, rest = base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws/console/serial/?token={quote(token)}"


def server_remote_console_create(*, actor: Actor, server_id: str, protocol: str, console_type: str) -> RemoteConsole:
    """A console URL with a new token for ``server_id`` (400 for a console type not offered; 404/403/409
    as opening the console says)."""
    kind = CONSOLE_TYPES.get((protocol, console_type))
    if kind is None:
        raise BadRequest(f"Unavailable console type {console_type}.")
    instance, _node = server_console.server_remote_console_check(actor=actor, server_id=server_id, kind=kind)
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        ConsoleToken.objects.filter(expires_at__lt=now).delete()  # nothing keeps a dead token
        record = ConsoleToken(id=identity_services.token_hash(token), instance=instance,
                              project_id=instance.project_id, user_id=actor.user_id, kind=kind,
                              console_type=console_type,
                              expires_at=now + timedelta(seconds=settings.STRATUS_CONSOLE_TOKEN_SECONDS))
        record.full_clean()
        record.save(force_insert=True)
    return RemoteConsole(protocol=protocol, type=console_type, url=console_url(kind=kind, token=token))


def console_token_redeem(*, token: str, kind: str) -> ConsoleToken:
    """The token's record, now used: once only, before it expires, for its kind of console; NotFound
    (one message for every reason) otherwise."""
    if not token or len(token) > 256:
        raise NotFound(TOKEN_INVALID)
    digest = identity_services.token_hash(token)
    now = timezone.now()
    with transaction.atomic():
        taken = ConsoleToken.objects.filter(id=digest, kind=kind, used_at__isnull=True,
                                            expires_at__gt=now).update(used_at=now)
        if taken != 1:
            raise NotFound(TOKEN_INVALID)
        return ConsoleToken.objects.get(id=digest)


def console_token_actor(*, user_id: str, project_id: str) -> Actor:
    """Whom a token's socket acts as: the user who asked for the URL, in the server's project, with the
    roles the user has there now (Forbidden once the user is gone or disabled)."""
    try:
        user = identity_selectors.user_get(user_id=user_id)
    except NotFound:
        raise Forbidden("The user who asked for this console is gone.") from None
    if not user.is_active:
        raise Forbidden("The user who asked for this console is disabled.")
    return identity_services.actor_for_session(user=user, project_id=project_id)
