"""Reads about node enrolment tokens and enrolled nodes (apps/compute/services/node_enrolment.py).
For the operator's shell (``manage.py node_token``) and the enrolment endpoint: no project scope."""
from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.compute.models import EnrolledNode, NodeToken
from apps.identity.policy import Actor, require_admin


def node_token_list(*, actor: Actor | None) -> QuerySet[NodeToken]:
    """Every token, newest first (its hash is never shown). ``actor`` None is the operator's shell."""
    if actor is not None:
        require_admin(actor, action="list node enrolment tokens")
    return NodeToken.objects.order_by("-created_at")


def node_token_usable(*, token_hash: str, now: datetime) -> NodeToken | None:
    """The token with this hash if it can still be exchanged: not used, not revoked, not expired."""
    return NodeToken.objects.filter(token_hash=token_hash, used_at__isnull=True, revoked_at__isnull=True,
                                    expires_at__gt=now).first()


def enrolled_node_list(*, actor: Actor | None) -> QuerySet[EnrolledNode]:
    if actor is not None:
        require_admin(actor, action="list enrolled nodes")
    return EnrolledNode.objects.order_by("role", "name")
