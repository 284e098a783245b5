"""The cloud keeps an admin, and nobody locks themselves out (issue 11, Horizon's rule).

Nobody disables or deletes the account they are signed in with, removes the admin role from it
(directly, through a group, or by deleting the role), or disables its domain; and no change leaves
the cloud without an enabled admin. The identity services that can do any of that run their change
inside ``admins_kept``, which looks at the outcome in the same transaction and refuses it (rolling it
back) with a typed error: the Keystone API renders it in its error format (403, 409), the dashboard
and the admin console show its message. The rule lives here only; no view or form repeats it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from apps.core.errors import Conflict, Forbidden
from apps.identity import selectors
from apps.identity.policy import Actor


class SelfLockout(Forbidden):
    """The change would lock the caller out of the account it is signed in with (403)."""


class LastAdmin(Conflict):
    """The change would leave the cloud with no enabled admin (409)."""


@contextmanager
def admins_kept(*, actor: Actor, doing: str, applies: bool = True) -> Iterator[None]:
    """Run a change (the ``with`` block, inside the service's ``transaction.atomic``) and refuse it
    if afterwards no enabled admin is left (``LastAdmin``) or the caller's own account can no longer
    sign in or lost an admin role assignment (``SelfLockout``). ``doing`` completes "You cannot ...
    the account you are signed in with" ("disable", "delete", "remove the admin role from").
    ``applies=False``: the change cannot affect either (nothing is checked)."""
    if not applies:
        yield
        return
    admins = selectors.enabled_admin_names()
    own_grants = selectors.admin_grant_ids(user_id=actor.user_id)
    yield
    if admins and not selectors.enabled_admin_names():
        who = f"{admins[0]} is the last enabled admin" if len(admins) == 1 else \
            f"{', '.join(admins)} are the last enabled admins"
        raise LastAdmin(f"Refused: {who} of the cloud. Give another enabled user the admin role first.")
    if not selectors.user_can_sign_in(user_id=actor.user_id) or \
            own_grants - selectors.admin_grant_ids(user_id=actor.user_id):
        raise SelfLockout(f"You cannot {doing} the account you are signed in with.")
