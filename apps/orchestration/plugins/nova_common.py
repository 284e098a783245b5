"""What the OS::Nova::* plugins (and cinder's, glance's and the custom constraints) share: a service
error as the resource's failure, a delete tolerant of what is gone, request ids, the lookups of images,
flavors and networks through the owning apps' selectors as the stack's owner (another project's is not
found), and ``_lookup``, a custom constraint check over one of those lookups."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from apps.orchestration.plugins.base import ResourceFailed


def _failed(exc: Exception) -> ResourceFailed:
    return ResourceFailed(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")


def _remove_if_there(remove: Callable[[], object]) -> bool:
    """A delete tolerant of what is gone: ``remove()`` (the owning app's delete service, as the owner);
    True when it removed it, False when it was gone already (NotFound); any other error of the service
    is the resource's failure."""
    from apps.core.errors import NotFound, StratusError

    try:
        remove()
    except NotFound:
        return False
    except StratusError as exc:
        raise _failed(exc) from None
    return True


def _request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# ---- lookups through the owning apps' selectors, as the owner ------------------------------------

def image_id(actor: Any, ref: str) -> str:
    """The id of the image ``ref`` (an id or a name) the owner may see; NotFound otherwise."""
    from apps.core.errors import NotFound
    from apps.images import selectors as images

    if _is_uuid(ref):
        try:
            return images.image_get(actor=actor, image_id=ref).id
        except NotFound:
            pass
    found = list(images.image_filter(actor=actor, query={"name": [ref]}).values_list("id", flat=True)[:2])
    if not found:
        raise NotFound(f"Image {ref} could not be found.")
    if len(found) > 1:
        raise NotFound(f"Multiple physical resources were found with name ({ref}).")
    return found[0]


def flavor_id(actor: Any, ref: str) -> str:
    """The flavorid of the flavor ``ref`` (an id or a name) the owner may see; NotFound otherwise."""
    from apps.compute import selectors as compute
    from apps.core.errors import NotFound

    try:
        return compute.flavor_get(actor=actor, flavor_id=ref).flavorid
    except NotFound:
        pass
    for flavor in compute.flavor_list(actor=actor, query=compute.FlavorQuery(search=ref)):
        if flavor.name == ref:
            return flavor.flavorid
    raise NotFound(f"Flavor {ref} could not be found.")


def network_id(actor: Any, ref: str) -> str:
    from apps.core.errors import NotFound
    from apps.networks import selectors as networks

    if _is_uuid(ref):
        return networks.network_get(actor=actor, network_id=ref).id  # NotFound when not the owner's
    found = list(networks.network_list(actor=actor).filter(name=ref).values_list("id", flat=True)[:2])
    if len(found) != 1:
        raise NotFound(f"Network {ref} could not be found." if not found
                       else f"Multiple physical resources were found with name ({ref}).")
    return found[0]


def _string_map(value: dict[str, Any] | None) -> dict[str, str]:
    import json

    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (value or {}).items()}


def _lookup(find: Any) -> Any:
    """A constraint check that runs ``find(actor, value)`` as the stack's owner (``context.actor``).
    Without an owner (the engine binding a stack already accepted) there is nothing to check again."""
    def check(value: Any, context: Any) -> bool | None:
        from apps.core.errors import StratusError

        actor = getattr(context, "actor", None)
        if actor is None:
            return None
        for item in value if isinstance(value, list) else [value]:
            try:
                find(actor, str(item))
            except StratusError as exc:
                raise ValueError(getattr(exc, "message", None) or str(exc)) from None
        return None
    return check
