"""OS::Swift::Container over apps/objects' services, as the stack's owner (the container is in the
owner's account; the objects app's name checks, ACL parsing and quotas apply). A template never takes
over a container that exists already (an exclusive create), so a stack's delete removes only what it
made; with ``PurgeOnDelete`` the delete empties the container first (a page of objects per phase),
without it a non-empty container fails the delete as Heat's does."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from apps.orchestration.plugins.base import (
    BOOLEAN,
    INTEGER,
    MAP,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
)

PURGE_PAGE = 500  # objects deleted per delete phase; the next phase (a countdown later) goes on


def _failed(exc: Exception) -> ResourceFailed:
    return ResourceFailed(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")


def _meta(given: dict[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): "" if v is None else str(v) for k, v in (given or {}).items()}


@register
class SwiftContainer(Plugin):
    type_name = "OS::Swift::Container"
    description = "A resource for managing Swift containers."
    needs_actor = True
    properties_schema = {
        "name": Prop(STRING, "Name for the container. If not specified, a unique name will be generated."),
        "X-Container-Read": Prop(STRING, "Specify the ACL permissions on who can read objects in the container."),
        "X-Container-Write": Prop(STRING, "Specify the ACL permissions on who can write objects to the container."),
        "X-Container-Meta": Prop(MAP, "A map of user-defined meta data to associate with the container. Each key "
                                      "in the map will set the header X-Container-Meta-{key} with the "
                                      "corresponding value.", default={}),
        "X-Account-Meta": Prop(MAP, "A map of user-defined meta data to associate with the account. Each key in "
                                    "the map will set the header X-Account-Meta-{key} with the corresponding "
                                    "value.", default={}),
        "PurgeOnDelete": Prop(BOOLEAN, "If True, delete any objects in the container when the container is "
                                       "deleted. Otherwise, deleting a non-empty container will result in an "
                                       "error.", default=False),
    }
    attributes_schema = {
        "DomainName": Attr("The host from the container URL."),
        "WebsiteURL": Attr("The URL of the container."),
        "RootURL": Attr("The parent URL of the container."),
        "ObjectCount": Attr("The number of objects stored in the container.", INTEGER),
        "BytesUsed": Attr("The number of bytes stored in the container.", INTEGER),
        "HeadContainer": Attr("A map containing all headers for the container.", MAP),
    }

    def _account_url(self) -> str:
        from django.conf import settings

        return f"{settings.STRATUS_PUBLIC_URL.rstrip('/')}/object-store/v1/AUTH_{self.context.project_id}"

    def _attributes(self, row: Any) -> dict[str, Any]:
        root = self._account_url()
        headers = {"x-container-object-count": str(row.object_count), "x-container-bytes-used": str(row.bytes_used),
                   **{f"x-container-meta-{k}": v for k, v in row.metadata.items()}}
        if row.read_acl:
            headers["x-container-read"] = row.read_acl
        if row.write_acl:
            headers["x-container-write"] = row.write_acl
        return {"DomainName": urlsplit(root).netloc, "WebsiteURL": f"{root}/{quote(row.name, safe='')}",
                "RootURL": f"{root}/", "ObjectCount": row.object_count, "BytesUsed": row.bytes_used,
                "HeadContainer": headers}

    def _read(self, name: str) -> Any:
        from apps.objects import selectors

        return selectors.container_for(actor=self.context.actor, project_id=self.context.project_id, name=name,
                                       need="read")

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.core.errors import StratusError
        from apps.objects import services

        name = props.get("name") or self.context.physical_name(max_length=256)
        actor = self.context.actor
        try:
            services.container_create(actor=actor, name=name, project_id=self.context.project_id,
                                      metadata=_meta(props.get("X-Container-Meta")) or None,
                                      read_acl=props.get("X-Container-Read"), write_acl=props.get("X-Container-Write"),
                                      exclusive=True)
            if props.get("X-Account-Meta"):
                services.account_update(actor=actor, metadata=_meta(props["X-Account-Meta"]),
                                        project_id=self.context.project_id)
            row = self._read(name)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=name, attributes=self._attributes(row))

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        """Empty the container when ``PurgeOnDelete`` said so (a page a phase), then remove it. The
        property is read from the resource's template again: a delete's phases get no properties."""
        from apps.core.errors import Conflict, NotFound, StratusError
        from apps.objects import selectors, services

        if not physical_id:
            return True
        actor, pid = self.context.actor, self.context.project_id
        try:
            try:
                services.container_delete(actor=actor, name=physical_id, project_id=pid)
                return True
            except Conflict:
                if not self.purge_on_delete():
                    raise ResourceFailed(f"ResourceActionNotSupported: Deleting non-empty container "
                                         f"({physical_id}) when PurgeOnDelete is False") from None
            _, page = selectors.object_list(actor=actor, project_id=pid, container=physical_id,
                                            listing=selectors.Listing(limit=PURGE_PAGE))
            for obj in page:
                try:
                    services.object_delete(actor=actor, container=physical_id, name=obj.name, project_id=pid)
                except NotFound:
                    pass
            if len(page) >= PURGE_PAGE:
                return False  # more next phase
            services.container_delete(actor=actor, name=physical_id, project_id=pid)
        except NotFound:
            return True  # already gone
        except StratusError as exc:
            raise _failed(exc) from None
        return True

    def check_delete_complete(self, physical_id: str, data: dict[str, Any]) -> bool:
        return self.delete(physical_id, data)

    def purge_on_delete(self) -> bool:
        """The resource's ``PurgeOnDelete`` as its stack's template and parameters give it now."""
        from apps.orchestration import services
        from apps.orchestration.models import StackResource

        row = StackResource.objects.select_related("stack").filter(
            stack_id=self.context.stack_id, name=self.context.resource_name).first()
        if row is None:
            return False
        try:
            props = services.bind(row.stack, {}).properties(row.name)
        except Exception:  # noqa: BLE001 - unresolvable now: Heat's default (no purge)
            return False
        return bool(type(self).check(props, partial=True).get("PurgeOnDelete"))

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:  # noqa: ARG002
        from apps.core.errors import StratusError

        try:
            self._read(physical_id)
        except StratusError as exc:
            raise _failed(exc) from None

    def refreshed_attributes(self, physical_id: str, data: dict[str, Any]) -> dict[str, Any] | None:  # noqa: ARG002
        from apps.core.errors import StratusError

        try:
            return self._attributes(self._read(physical_id))
        except StratusError:
            return None
