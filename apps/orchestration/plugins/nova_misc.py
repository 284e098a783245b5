"""OS::Nova::KeyPair, OS::Nova::Flavor and OS::Nova::ServerGroup over apps/compute's services (never
its tables), as the stack's owner (``context.actor``): the compute app's validation and policy apply
(a flavor is for admins only). A delete of what is already gone succeeds."""
from __future__ import annotations

from typing import Any

from apps.orchestration.plugins.base import (
    BOOLEAN,
    INTEGER,
    LIST,
    MAP,
    NUMBER,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
)
from apps.orchestration.plugins.nova_common import _failed, _remove_if_there, _string_map


@register
class KeyPair(Plugin):
    type_name = "OS::Nova::KeyPair"
    description = "A resource for creating Nova key pairs (imported, or generated with its private key kept " \
                  "when save_private_key is true)."
    needs_actor = True
    properties_schema = {
        "name": Prop(STRING, "The name of the key pair.", required=True, min=1, max=255),
        "save_private_key": Prop(BOOLEAN, "True if the system should remember a generated private key; False "
                                          "otherwise.", default=False),
        "type": Prop(STRING, "Keypair type.", default="ssh", allowed_values=("ssh", "x509")),
        "public_key": Prop(STRING, "The optional public key. This allows users to supply the public key from a "
                                   "pre-existing key pair. If not supplied, a new key pair will be generated."),
        "user": Prop(STRING, "ID or name of user to whom to add key-pair (admins only)."),
    }
    attributes_schema = {
        "public_key": Attr("The public key."),
        "private_key": Attr("The private key if it has been saved."),
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.compute import services
        from apps.core.errors import StratusError

        try:
            keypair, private = services.keypair_create(actor=self.context.actor, name=props["name"],
                                                       public_key=props.get("public_key") or None,
                                                       key_type=props["type"], user_id=props.get("user") or None)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=keypair.name, data={"user_id": keypair.user_id}, attributes={
            "public_key": keypair.public_key,
            "private_key": private if props.get("save_private_key") and private else ""})

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:
        from apps.compute import services

        user_id = data.get("user_id")
        if physical_id:
            _remove_if_there(lambda: services.keypair_delete(
                actor=self.context.actor, name=physical_id,
                user_id=user_id if user_id and user_id != self.context.actor.user_id else None))
        return True

    def check_resource(self, physical_id: str, data: dict[str, Any]) -> None:  # noqa: ARG002
        from apps.compute import selectors
        from apps.core.errors import NotFound

        try:
            selectors.keypair_get(actor=self.context.actor, name=physical_id)
        except NotFound:
            raise ResourceFailed(f"NotFound: Keypair {physical_id} could not be found.") from None


@register
class Flavor(Plugin):
    type_name = "OS::Nova::Flavor"
    description = "A resource for creating OpenStack virtual hardware templates (admins only)."
    needs_actor = True
    properties_schema = {
        "name": Prop(STRING, "Name of the flavor."),
        "flavorid": Prop(STRING, "Unique ID of the flavor. If not specified, an UUID will be auto generated."),
        "ram": Prop(INTEGER, "Memory in MB for the flavor.", required=True, min=1),
        "vcpus": Prop(INTEGER, "Number of VCPUs for the flavor.", required=True, min=1),
        "disk": Prop(INTEGER, "Size of local disk in GB.", default=0, min=0),
        "swap": Prop(INTEGER, "Swap space in MB.", default=0, min=0),
        "rxtx_factor": Prop(NUMBER, "RX/TX factor.", default=1.0),
        "ephemeral": Prop(INTEGER, "Size of a secondary ephemeral data disk in GB.", default=0, min=0),
        "is_public": Prop(BOOLEAN, "Scope of flavor accessibility. Public or private.", default=True),
        "tenants": Prop(LIST, "List of tenants who can access the private flavor.", default=[],
                        update_allowed=True, schema={"*": Prop(STRING)}),
        "extra_specs": Prop(MAP, "Key/Value pairs to extend the capabilities of the flavor.",
                            update_allowed=True),
    }
    attributes_schema = {"is_public": Attr("Whether the flavor is shared across all projects.", BOOLEAN),
                         "extra_specs": Attr("Extra specs of the flavor in key-value pairs.", MAP)}

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.compute import services
        from apps.core.errors import StratusError

        actor = self.context.actor
        try:
            flavor = services.flavor_create(actor=actor, name=props.get("name") or self.context.physical_name(),
                                            ram=props["ram"], vcpus=props["vcpus"], disk=props["disk"],
                                            flavor_id=props.get("flavorid") or None, ephemeral=props["ephemeral"],
                                            swap=props["swap"], rxtx_factor=float(props["rxtx_factor"]),
                                            is_public=props["is_public"])
            specs = _string_map(props.get("extra_specs"))
            if specs:
                services.flavor_extra_specs_set(actor=actor, flavor_id=flavor.flavorid, specs=specs)
            for project in props.get("tenants") or []:
                services.flavor_access_add(actor=actor, flavor_id=flavor.flavorid, project_id=project)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=flavor.flavorid, attributes={"is_public": flavor.is_public, "extra_specs": specs})

    def update(self, physical_id: str, data: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> Outcome:
        from apps.compute import services
        from apps.core.errors import NotFound, StratusError

        actor = self.context.actor
        specs = _string_map(new.get("extra_specs"))
        try:
            services.flavor_extra_specs_set(actor=actor, flavor_id=physical_id, specs=specs)
            for key in set(_string_map(old.get("extra_specs"))) - set(specs):
                try:
                    services.flavor_extra_spec_delete(actor=actor, flavor_id=physical_id, key=key)
                except NotFound:
                    pass
            old_t, new_t = set(old.get("tenants") or []), set(new.get("tenants") or [])
            for project in new_t - old_t:
                services.flavor_access_add(actor=actor, flavor_id=physical_id, project_id=project)
            for project in old_t - new_t:
                services.flavor_access_remove(actor=actor, flavor_id=physical_id, project_id=project)
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=physical_id, data=data,
                       attributes={"is_public": new.get("is_public", True), "extra_specs": specs})

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002
        from apps.compute import services

        if physical_id:
            _remove_if_there(lambda: services.flavor_delete(actor=self.context.actor, flavor_id=physical_id))
        return True


@register
class ServerGroup(Plugin):
    type_name = "OS::Nova::ServerGroup"
    description = "A resource for managing a Nova server group (one policy, as Nova's 2.64 API)."
    needs_actor = True
    properties_schema = {
        "name": Prop(STRING, "Server Group name."),
        "policies": Prop(LIST, "A list of exactly one policy to apply.", default=["anti-affinity"],
                         schema={"*": Prop(STRING, allowed_values=("anti-affinity", "affinity",
                                                                   "soft-anti-affinity", "soft-affinity"))}),
        "rules": Prop(MAP, "Rules for a policy (ignored)."),
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.compute import services
        from apps.core.errors import StratusError

        policies = props.get("policies") or ["anti-affinity"]
        if len(policies) != 1:
            raise ResourceFailed("Property error: policies: exactly one policy is allowed.")
        try:
            group = services.server_group_create(actor=self.context.actor,
                                                 name=props.get("name") or self.context.physical_name(),
                                                 policy=policies[0])
        except StratusError as exc:
            raise _failed(exc) from None
        return Outcome(physical_id=group.id)

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002
        from apps.compute import services

        if physical_id:
            _remove_if_there(lambda: services.server_group_delete(actor=self.context.actor, group_id=physical_id))
        return True
