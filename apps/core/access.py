"""The one answer to "which rows may this caller see or change" (NetBox's ``RestrictedQuerySet.restrict``).

Every selector starts from ``restrict(queryset, actor, action)``. The rule of each model sits next
to it in its ``models.py``, as ``access_rule = AccessRule(...)``: which field names the owning
project (or user), and what "view" admits beyond the caller's own rows (public images, shared
networks, a flavor given to the project, the projects a user holds a role on, ...). ``restrict``
itself stays one function:

- an admin may see and change every row (``all_projects=False`` narrows an admin to its own
  project, as Nova's and Cinder's lists do without ``all_tenants``);
- anyone else may ``view`` its project's rows when it holds a reading role there, and ``change``
  them when it holds a writing role (``apps.identity.policy``), its own user's rows, and for
  ``view`` what the model's rule adds;
- a model without a rule cannot be restricted (a TypeError, never every row).

Admin-only reads (nodes, backends, users, ...) check ``require_admin`` themselves.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from django.db.models import Model, OuterRef, Q, QuerySet, Subquery

from apps.core.errors import Forbidden

if TYPE_CHECKING:
    from apps.identity.policy import Actor

M = TypeVar("M", bound=Model)
Action = Literal["view", "change"]
ACTIONS: tuple[Action, ...] = ("view", "change")
NOTHING = Q(pk__in=[])


@dataclass(frozen=True)
class Caller:
    """What a rule may look at: the caller's project when it holds a role there that allows the
    action (else None: the caller is then treated as one without a project), and its user (None
    when the rows are read for a project rather than a caller)."""

    project_id: str | None
    user: Any = None


@dataclass(frozen=True)
class AccessRule:
    """A model's access rule. ``project``: the lookup of the owning project's id (None when no
    project owns the rows); ``user``: the lookup of the owning user's id, for rows a user owns;
    ``view_also``: the rows "view" admits beyond those (given the caller)."""

    project: str | None = "project_id"
    user: str | None = None
    view_also: Callable[[Caller], Q] | None = None

    def q(self, caller: Caller, action: Action) -> Q:
        condition = NOTHING
        if self.project is not None and caller.project_id is not None:
            condition |= Q(**{self.project: caller.project_id})
        if self.user is not None and caller.user is not None:
            condition |= Q(**{self.user: caller.user.id})
        if action == "view" and self.view_also is not None:
            condition |= self.view_also(caller)
        return condition


def access_rule(model: type[Model]) -> AccessRule:
    rule = getattr(model, "access_rule", None)
    if not isinstance(rule, AccessRule):
        raise TypeError(f"{model.__name__} declares no access_rule: its rows cannot be restricted")
    return rule


def restrict(queryset: QuerySet[M], actor: Actor, action: Action, *, all_projects: bool = True) -> QuerySet[M]:
    """``queryset`` narrowed to the rows ``actor`` may ``action`` ("view" or "change")."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}: expected one of {ACTIONS}")
    rule = access_rule(queryset.model)
    if actor.is_admin and all_projects:
        return queryset
    allowed = actor.may_read if action == "view" else actor.may_write
    project_id = actor.project_id if allowed(actor.project_id) else None
    return queryset.filter(rule.q(Caller(project_id=project_id, user=actor.user), action))


def restrict_to_project(queryset: QuerySet[M], *, project_id: str) -> QuerySet[M]:
    """The rows a reader of ``project_id`` may view, whoever asks (a service or node task acting
    for that project's resource, e.g. the images a server of the project may boot)."""
    return queryset.filter(access_rule(queryset.model).q(Caller(project_id=project_id), "view"))


def _value(row: Model, lookup: str) -> Any:
    value: Any = row
    for part in lookup.split("__"):
        value = getattr(value, part, None)
    return value


def may_change(actor: Actor, row: Model) -> bool:
    """``restrict``'s "change" rule for one row already read (no query): what a page asks before it
    offers a form or a button. The services enforce it again."""
    if actor.is_admin:
        return True
    rule = access_rule(type(row))
    if rule.project is not None and actor.may_write(actor.project_id) \
            and _value(row, rule.project) == actor.project_id:
        return True
    return rule.user is not None and _value(row, rule.user) == actor.user_id


def restricted_get(queryset: QuerySet[M], actor: Actor, action: Action, *, not_found: Exception,
                   **lookup: Any) -> M:
    """The one row ``lookup`` names if ``actor`` may ``action`` it: ``not_found`` when it may not
    even see it (another project's row answers as an unknown one), Forbidden when it may see it but
    not change it (a reader)."""
    row = restrict(queryset, actor, "view").filter(**lookup).first()
    if row is None:
        raise not_found
    if action == "change" and not may_change(actor, row):
        raise Forbidden(f"You are not authorized to change this {queryset.model._meta.verbose_name}.")
    return row


def visible_name(queryset: QuerySet[Any], actor: Actor, ref: str, *, field: str = "name") -> Subquery:
    """An annotation: the ``field`` of the row of ``queryset`` whose id the outer query's ``ref`` holds,
    when ``actor`` may view that row, else NULL. How a list shows the name of a related thing (and
    links to it) in its own query, whatever its length, and nothing of one the caller may not see."""
    return Subquery(restrict(queryset, actor, "view").filter(pk=OuterRef(ref)).values(field)[:1])
