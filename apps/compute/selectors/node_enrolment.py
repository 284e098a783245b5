"""Reads about node enrolment tokens and enrolled nodes (apps/compute/services/node_enrolment.py).
For the operator's shell (``manage.py node_token``), the enrolment endpoint and the admins' dashboard
(Admin > Node enrolment): no project scope."""
from __future__ import annotations

from datetime import datetime

from django.db.models import Case, CharField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from apps.compute.models import EnrolledNode, NodeToken
from apps.core import pagination
from apps.core.errors import BadRequest, NotFound
from apps.identity.policy import Actor, require_admin


def node_token_list(*, actor: Actor | None) -> QuerySet[NodeToken]:
    """Every token, newest first (its hash is never shown). ``actor`` None is the operator's shell."""
    if actor is not None:
        require_admin(actor, action="list node enrolment tokens")
    return NodeToken.objects.order_by("-created_at")


def node_token_get(*, actor: Actor | None, token_id: str) -> NodeToken:
    """One token by its id (its hash is never shown); NotFound when there is none."""
    if actor is not None:
        require_admin(actor, action="read node enrolment tokens")
    record = NodeToken.objects.filter(pk=token_id).first()
    if record is None:
        raise NotFound(f"Node token {token_id} could not be found.")
    return record


def node_token_usable(*, token_hash: str, now: datetime) -> NodeToken | None:
    """The token with this hash if it can still be exchanged: not used, not revoked, not expired."""
    return NodeToken.objects.filter(token_hash=token_hash, used_at__isnull=True, revoked_at__isnull=True,
                                    expires_at__gt=now).first()


def enrolled_node_list(*, actor: Actor | None) -> QuerySet[EnrolledNode]:
    if actor is not None:
        require_admin(actor, action="list enrolled nodes")
    return EnrolledNode.objects.order_by("role", "name")


# the columns the dashboard's Node enrolment table sorts by (ties broken by id)
NODE_TOKEN_SORT_KEYS = ("created_at", "name", "role", "created_by", "expires_at", "state", "node_name")


def _token_state(now: datetime) -> Case:
    """A token's state as the enrolment exchange decides it (node_token_usable): revoked, used, expired
    or usable, in that precedence."""
    return Case(When(revoked_at__isnull=False, then=Value("revoked")),
                When(used_at__isnull=False, then=Value("used")),
                When(expires_at__lte=now, then=Value("expired")),
                default=Value("usable"), output_field=CharField())


def node_token_page(*, actor: Actor, search: str = "", sort_key: str = "created_at", ascending: bool = False,
                    limit: int | None = None, marker: str | None = None) -> list[NodeToken]:
    """One page of the tokens for the admins' dashboard (Admin > Node enrolment): each with ``state``
    (usable, used, expired, revoked) and the node that enrolled with it (``node_name``, ``node_address``,
    ``node_enrolled_at``: None when none did, or it enrolled again since with another token), those whose
    node name or role contains ``search``, sorted by ``sort_key`` (one of NODE_TOKEN_SORT_KEYS, then id),
    after the token ``marker`` (its id). One query, two with a marker, whatever the number of tokens."""
    require_admin(actor, action="list node enrolment tokens")
    if sort_key not in NODE_TOKEN_SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {sort_key}.")
    node = EnrolledNode.objects.filter(token=OuterRef("pk")).order_by("-enrolled_at")
    qs = NodeToken.objects.annotate(
        state=_token_state(timezone.now()), node_name=Subquery(node.values("name")[:1]),
        node_address=Subquery(node.values("address")[:1]), node_enrolled_at=Subquery(node.values("enrolled_at")[:1]))
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(role__icontains=search))
    order = [(sort_key, ascending), ("id", ascending)]
    qs = pagination.keyset(qs, order=order, marker=marker,
                           unknown=lambda name: BadRequest(f"Marker {name} could not be found."))
    if limit is not None:
        qs = qs[:limit]
    return list(qs)
