"""What the OS::Neutron::* plugins (and the AWS::EC2 network types over them) share: a networks
service or selector called as the stack's owner with its error as the resource's failure, the
lookups of networks, subnets, routers and security groups by name or id, and ``NeutronPlugin``
(a delete tolerant of what is gone that waits out "in use" answers, check, refresh, ``show``; read,
remove, update and the plain attributes from what a type declares: ``Calls`` and ``fields``)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from apps.orchestration.plugins.base import Plugin, ResourceFailed

T = TypeVar("T")


def _failed(exc: Exception) -> ResourceFailed:
    return ResourceFailed(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")


def _selectors() -> Any:
    from apps.networks import selectors

    return selectors


def _call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func`` (a networks service or selector); its error as the resource's failure."""
    from apps.core.errors import StratusError

    try:
        return func(*args, **kwargs)
    except StratusError as exc:
        raise _failed(exc) from None


def _in_use(exc: Exception) -> bool:
    """The network app's 409 "in use" answers: what a delete waits out (Heat retries them), e.g. a subnet
    whose router interface or a group whose port goes in the same stack walk, or one held outside it."""
    from apps.networks import errors

    return isinstance(exc, errors.NetworkInUse | errors.SubnetInUse | errors.PortInUse | errors.RouterInUse
                      | errors.RouterInterfaceInUseByFloatingIP | errors.SecurityGroupInUse)


def _by_name_or_id(actor: Any, ref: str, *, get: str, listing: str, key: str, noun: str) -> str:
    """The id of the network/subnet/router ``ref`` names (an id, else a unique name the owner sees):
    another project's answers the network app's 404."""
    from apps.core.errors import BadRequest, NotFound

    selectors = _selectors()
    try:
        return getattr(selectors, get)(actor=actor, **{key: ref}).id
    except NotFound as not_found:
        query = selectors.ListQuery(filters={"name": [ref]})
        found = list(getattr(selectors, listing)(actor=actor, query=query).values_list("id", flat=True)[:2])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise BadRequest(f"Multiple {noun} matches found for name '{ref}', use an ID to be more "
                             "specific.") from None
        raise not_found from None


def _network_id(actor: Any, ref: str) -> str:
    return _by_name_or_id(actor, ref, get="network_get", listing="network_list", key="network_id", noun="network")


def _subnet_id(actor: Any, ref: str) -> str:
    return _by_name_or_id(actor, ref, get="subnet_get", listing="subnet_list", key="subnet_id", noun="subnet")


def _router_id(actor: Any, ref: str) -> str:
    return _by_name_or_id(actor, ref, get="router_get", listing="router_list", key="router_id", noun="router")


def _group_ids(actor: Any, refs: list[str]) -> list[str]:
    return [_selectors().security_group_by_name_or_id(actor=actor, ref=ref).id for ref in refs]


@dataclass(frozen=True)
class Calls:
    """The networks app's functions for one resource type, by name (imported when called, as the
    plugins import no app at load): the selector that reads one (``get``), the services that
    delete and update it, the API serializer of its ``show`` attribute, and the keyword its id goes
    by. ``Calls.of("network")``: network_get, network_delete, network_update, network_out, network_id."""

    id_key: str
    get: str
    delete: str
    update: str
    out: str

    @classmethod
    def of(cls, resource: str, *, id_key: str = "") -> Calls:
        return cls(id_key=id_key or f"{resource}_id", get=f"{resource}_get", delete=f"{resource}_delete",
                   update=f"{resource}_update", out=f"{resource}_out")


# an attribute whose row field has another name (Neutron's API says tenant, the networks app project)
ROW_FIELDS = {"tenant_id": "project_id"}


class NeutronPlugin(Plugin):
    """What every resource over the networks app shares: a delete tolerant of what is gone that waits
    out "in use" (409) answers until the stack's deadline, a check and a refresh that read the resource
    again through the networks selectors (another project's is not found), the ``show`` attribute.

    A type over one networks resource says which (``calls``) and which of its attributes are the row's
    fields as they are (``fields``; ``_attributes`` adds the computed ones): reading, showing, removing
    and updating it follow. A type whose physical id is not the resource's id overrides ``read`` and
    ``remove`` (its ``show`` is empty without ``calls``)."""

    needs_actor = True
    calls: ClassVar[Calls | None] = None
    fields: ClassVar[tuple[str, ...]] = ()

    @property
    def _calls(self) -> Calls:
        if self.calls is None:
            raise NotImplementedError(f"{type(self).__name__} declares no calls: it reads and removes itself")
        return self.calls

    def _id(self, physical_id: str) -> dict[str, Any]:
        return {"actor": self.context.actor, self._calls.id_key: physical_id}

    def read(self, physical_id: str) -> Any:
        return getattr(_selectors(), self._calls.get)(**self._id(physical_id))

    def remove(self, physical_id: str) -> None:
        from apps.networks import services

        getattr(services, self._calls.delete)(**self._id(physical_id))

    def updated(self, physical_id: str, changes: dict[str, Any]) -> Any:
        """The row after ``changes`` through its update service (no changes: read again); an error is the
        resource's failure."""
        from apps.networks import services

        if not changes:
            return _call(self.read, physical_id)
        return _call(getattr(services, self._calls.update), **self._id(physical_id), changes=changes)

    def show(self, row: Any) -> dict[str, Any]:
        from apps.networks.api import serializers

        return getattr(serializers, self.calls.out)(row, self.context.actor) if self.calls else {}

    def _attributes(self, row: Any) -> dict[str, Any]:
        return {name: getattr(row, ROW_FIELDS.get(name, name)) for name in self.fields}

    def attributes_of(self, row: Any) -> dict[str, Any]:
        """What get_attr reads: the type's attributes and ``show`` (the networks API's body)."""
        return {**self._attributes(row), "show": self.show(row)}

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        from apps.core.errors import NotFound, StratusError

        if not physical_id:
            return True
        try:
            self.remove(physical_id)
        except NotFound:
            return True  # already gone
        except StratusError as exc:
            if _in_use(exc):
                return False  # checked again (the worker's countdown) until free or the stack times out
            raise _failed(exc) from None
        return True

    def check_delete_complete(self, physical_id: str, data: dict[str, Any]) -> bool:
        return self.delete(physical_id, data)

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:  # noqa: ARG002
        _call(self.read, physical_id)

    def refreshed_attributes(self, physical_id: str, data: dict[str, Any]) -> dict[str, Any] | None:  # noqa: ARG002
        from apps.core.errors import NotFound

        if not physical_id:
            return None
        try:
            row = self.read(physical_id)
        except NotFound:
            return None
        return self.attributes_of(row)
