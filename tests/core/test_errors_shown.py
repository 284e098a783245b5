"""An error's ``shown`` text (what the dashboard and the admin console say) names what its message
gives by id; the message itself (what the APIs send) keeps the ids."""
from __future__ import annotations

from types import SimpleNamespace

from apps.core.errors import Conflict, named


def test_shown_replaces_ids_by_names_and_the_message_keeps_them() -> None:
    router = SimpleNamespace(id="d9a0d4a7-1111", name="edge")
    unnamed = SimpleNamespace(id="0000-2222", name="")
    error = Conflict(f"Router {router.id} still has ports on {unnamed.id}", names=named(router, unnamed, None))
    assert error.message == "Router d9a0d4a7-1111 still has ports on 0000-2222"
    assert error.shown == "Router edge still has ports on 0000-2222"
    assert Conflict("plain").shown == "plain"
