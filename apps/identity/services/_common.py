"""What the identity services share: the rules on names and tags, the uniqueness
conflict, the role graph's cache, the token hash."""
from __future__ import annotations

import hashlib
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction

from apps.core.errors import BadRequest, Conflict
from apps.core.validators import UNSET, Unset
from apps.identity import selectors
from apps.identity.models import DEFAULT_DOMAIN_ID, PERM_ADMIN, PERM_READ, PERM_WRITE
from apps.identity.policy import Actor

UNAUTHENTICATED = "The request you have made requires authentication."

# What each well-known role lets its holder do on a project (any other role: read).
ROLE_PERMS: dict[str, set[str]] = {
    "reader": {PERM_READ},
    "member": {PERM_READ, PERM_WRITE},
    "admin": {PERM_READ, PERM_WRITE, PERM_ADMIN},
}


# ---- rules on values (the API's parsers and the dashboard's forms check the types) ---------------

def _name(value: str | Unset, *, max_length: int = 255) -> str | Unset:
    """A name: not blank, at most ``max_length`` characters (UNSET passes)."""
    if value is UNSET:
        return value
    if not value.strip() or len(value) > max_length:
        raise BadRequest(f"Invalid input for field 'name': a name is 1 to {max_length} characters, not all blank.")
    return value


MAX_TAGS = 80


def _tags(value: list[str] | Unset) -> list[str] | Unset:
    """Keystone keeps at most MAX_TAGS tags (duplicates dropped, the first kept; UNSET passes)."""
    if value is UNSET:
        return value
    tags = list(dict.fromkeys(value))
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"Invalid input for field 'tags': at most {MAX_TAGS} tags.")
    return tags


def _duplicate(what: str, name: str, where: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store {what} - Duplicate entry found with name "
                    f"{name} at {where}.")


def _save_unique(obj: Any, what: str, where: str) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        raise _duplicate(what, getattr(obj, "name", str(obj.pk)), where) from None


def _role_graph_changed() -> None:
    """Roles or inference rules changed: drop the cached role graph now (so this transaction reads
    its own changes) and again once it commits (so no reader keeps what it saw before)."""
    cache.delete(selectors.ROLE_GRAPH_KEY)
    transaction.on_commit(lambda: cache.delete(selectors.ROLE_GRAPH_KEY))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _default_domain_for(actor: Actor) -> str:
    if actor.project is not None:
        return actor.project.domain_id
    if actor.domain is not None:
        return actor.domain.id
    return DEFAULT_DOMAIN_ID
