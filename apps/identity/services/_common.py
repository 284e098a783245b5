"""What the identity services share: the checks of names, texts, flags and tags, the uniqueness
conflict, the role graph's cache, the token hash."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction

from apps.core.errors import BadRequest, Conflict
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


# ---- validation helpers ---------------------------------------------------------------------

def _name(value: Any, *, what: str, max_length: int = 255) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"Invalid input for field 'name': a {what} needs a non-empty name.")
    if len(value) > max_length:
        raise BadRequest(f"Invalid input for field 'name': '{value[:20]}...' is too long (max {max_length}).")
    return value


def _bool(value: Any, *, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise BadRequest(f"Invalid input for field '{field}': {value!r} is not of type 'boolean'.")


def _text(value: Any, *, field: str, max_length: int | None = None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{field}': {value!r} is not of type 'string'.")
    if max_length is not None and len(value) > max_length:
        raise BadRequest(f"Invalid input for field '{field}': '{value[:20]}...' is too long (max {max_length}).")
    return value


def _options(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BadRequest(f"Invalid input for field 'options': {value!r} is not of type 'object'.")
    return dict(value)


MAX_TAGS = 80


def _tag(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or "/" in value or "," in value:
        raise BadRequest(f"Invalid input for field 'tags': {value!r} is not a valid tag (a non-empty string of "
                         "at most 255 characters without '/' or ',').")
    return value


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise BadRequest("Invalid input for field 'tags': must be a list of strings.")
    tags = list(dict.fromkeys(_tag(v) for v in value))
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
