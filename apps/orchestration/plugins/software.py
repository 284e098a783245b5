"""Software configs: resources that hold a configuration (a script, a structure, a cloud-config document,
a multipart MIME message of several) for a server's user_data or a deployment. Each is a software config
of the stack owner's project, made through ``services.software_config_create`` (it shows in
``/software_configs``; a server's user_data_format SOFTWARE_CONFIG or RAW given its id boots with its
text): its physical id is the config's id, its ``config`` attribute the config. Deleting the resource
deletes the config (one already gone is fine).
"""
from __future__ import annotations

import json
import re
import uuid
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import Parser
from typing import Any

import yaml

from apps.orchestration.plugins.base import (
    ANY,
    LIST,
    MAP,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
)

IO_SCHEMA = {"name": Prop(STRING, "Name of the input or output.", required=True),
             "description": Prop(STRING, "Description of the input or output."),
             "type": Prop(STRING, "Type of the value.", default="String",
                          allowed_values=("String", "Number", "CommaDelimitedList", "Json", "Boolean")),
             "default": Prop(ANY, "Default value of the input."),
             "replace_on_change": Prop("boolean", "Replace the deployment on a change of this input.",
                                       default=False),
             "error_output": Prop("boolean", "Whether this output signals an error.", default=False)}
CONFIG_TYPES = ("OS::Heat::SoftwareConfig", "OS::Heat::StructuredConfig", "OS::Heat::CloudConfig",
                "OS::Heat::MultipartMime")


def _io(values: list[dict[str, Any]] | None, inputs: bool) -> list[dict[str, Any]]:
    keep = ("name", "description", "type", "default", "replace_on_change") if inputs else \
        ("name", "description", "type", "error_output")
    return [{k: v for k, v in item.items() if k in keep and v is not None} for item in values or []]


def _stored(plugin: Plugin, text: str, shown: Any, *, group: str | None, options: dict[str, Any] | None = None,
            inputs: list[dict[str, Any]] | None = None, outputs: list[dict[str, Any]] | None = None) -> Outcome:
    """A software config of the owner's project holding ``text``; ``shown`` is its ``config`` attribute
    (a StructuredConfig's map; the text otherwise). get_resource gives the config's id."""
    from apps.core.errors import StratusError
    from apps.orchestration import services

    body = {"name": plugin.context.physical_name(), "group": group or "Heat::Ungrouped", "config": text,
            "options": options or {}, "inputs": inputs or [], "outputs": outputs or []}
    try:
        row = services.software_config_create(actor=plugin.context.actor, body=body)
    except StratusError as exc:
        raise ResourceFailed(f"{type(exc).__name__}: {exc}") from None
    return Outcome(physical_id=row.id, attributes={"config": shown, "group": body["group"],
                                                   "options": body["options"], "inputs": body["inputs"],
                                                   "outputs": body["outputs"]})


class _Stored(Plugin):
    """Deletes its software config (one already gone, or never made, is fine)."""

    needs_actor = True

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        from apps.core.errors import NotFound, StratusError
        from apps.orchestration import services

        if not physical_id:
            return True
        try:
            services.software_config_delete(actor=self.context.actor, config_id=physical_id)
        except NotFound:
            return True
        except StratusError as exc:
            raise ResourceFailed(f"{type(exc).__name__}: {exc}") from None
        return True


class _Config(_Stored):
    properties_schema = {
        "group": Prop(STRING, "Namespace to group this software config by when delivered to a server.",
                      default="Heat::Ungrouped"),
        "config": Prop(STRING, "Configuration script or manifest which specifies what actual configuration "
                       "is performed."),
        "options": Prop(MAP, "Map containing options specific to the configuration management tool used by "
                        "this resource."),
        "inputs": Prop(LIST, "Schema representing the inputs that this software config is expecting.",
                       schema={"*": Prop(MAP, schema=IO_SCHEMA)}),
        "outputs": Prop(LIST, "Schema representing the outputs that this software config will produce.",
                        schema={"*": Prop(MAP, schema=IO_SCHEMA)}),
    }
    attributes_schema = {"config": Attr("The config value of the software config.", ANY)}

    def config(self, props: dict[str, Any]) -> Any:
        return props.get("config") or ""

    def create(self, props: dict[str, Any]) -> Outcome:
        config = self.config(props)
        text = config if isinstance(config, str) else json.dumps(config)
        return _stored(self, text, config, group=props.get("group"), options=props.get("options") or {},
                       inputs=_io(props.get("inputs"), True), outputs=_io(props.get("outputs"), False))


@register
class SoftwareConfig(_Config):
    type_name = "OS::Heat::SoftwareConfig"
    description = ("A resource for describing and storing software configuration: a script or manifest, "
                   "with its inputs and outputs, for a server's user_data or a deployment.")


@register
class StructuredConfig(_Config):
    type_name = "OS::Heat::StructuredConfig"
    description = "A resource which has same logic with OS::Heat::SoftwareConfig, its config a map."
    properties_schema = {**_Config.properties_schema,
                         "config": Prop(MAP, "Map representing the configuration data structure which will be "
                                        "serialized to JSON format.")}

    def config(self, props: dict[str, Any]) -> Any:
        return props.get("config") or {}


def _cloud_config(value: dict[str, Any]) -> str:
    return "#cloud-config\n" + yaml.safe_dump(value, default_flow_style=False, sort_keys=False)


@register
class CloudConfig(_Stored):
    type_name = "OS::Heat::CloudConfig"
    description = "A configuration resource for representing cloud-init cloud-config (a #cloud-config document)."
    properties_schema = {"cloud_config": Prop(MAP, "Map representing the cloud-config data structure which will "
                                              "be formatted as YAML.")}
    attributes_schema = {"config": Attr("The config value of the software config.")}

    def create(self, props: dict[str, Any]) -> Outcome:
        config = _cloud_config(props.get("cloud_config") or {})
        return _stored(self, config, config, group="Heat::Ungrouped")


SUBTYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]{0,63}$")  # a MIME subtype: nothing that could end its header


@register
class MultipartMime(_Stored):
    type_name = "OS::Heat::MultipartMime"
    description = ("Assembles a collection of software configurations as a multi-part mime message: each "
                   "part's config is a config resource's id or the text itself.")
    properties_schema = {
        "parts": Prop(LIST, "Parts belonging to this message.", default=[], schema={"*": Prop(MAP, schema={
            "config": Prop(STRING, "Content of part to attach, either inline or by referencing the ID of "
                           "another software config resource.", required=True),
            "filename": Prop(STRING, "Optional filename to associate with part."),
            "type": Prop(STRING, "Whether the part content is text or multipart.", default="text",
                         allowed_values=("text", "multipart")),
            "subtype": Prop(STRING, "Optional subtype to specify with the type."),
        })}),
        "group": Prop(STRING, "Namespace to group this software config by when delivered to a server.",
                      default="Heat::Ungrouped"),
    }
    attributes_schema = {"config": Attr("The config value of the software config.")}

    def _part_text(self, ref: str) -> str:
        """A part's config: the text of the software config whose id it is (one the owner may see), else
        the text itself."""
        from apps.core.errors import NotFound
        from apps.orchestration import selectors

        try:
            uuid.UUID(ref.strip())
        except ValueError:
            return ref
        try:
            return selectors.software_config_get(actor=self.context.actor, config_id=ref.strip()).config
        except NotFound:
            return ref

    def create(self, props: dict[str, Any]) -> Outcome:
        message = MIMEMultipart()
        for part in props.get("parts") or []:
            text = self._part_text(part["config"])
            if part.get("type") == "multipart":
                inner = Parser().parsestr(text)
                if not inner.is_multipart():
                    raise ResourceFailed(f"Part of type multipart is not a multipart message: {part['config'][:80]}")
                for sub in inner.get_payload():
                    message.attach(sub)
                continue
            subtype = part.get("subtype") or _guess(text)
            if not SUBTYPE.match(subtype):
                raise ResourceFailed(f'Invalid MIME subtype "{subtype[:80]}".')
            mime = MIMEText(text, subtype, "utf-8" if not text.isascii() else "us-ascii")
            if part.get("filename"):
                mime.add_header("Content-Disposition", "attachment", filename=part["filename"])
            message.attach(mime)
        config = message.as_string()
        return _stored(self, config, config, group=props.get("group"))


def _guess(text: str) -> str:
    """cloud-init's own guess from the first line (Heat's default subtype)."""
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith("#!"):
        return "x-shellscript"
    if first.startswith("#cloud-config"):
        return "cloud-config"
    if first.startswith("#cloud-boothook"):
        return "cloud-boothook"
    if first.startswith("#include"):
        return "x-include-url"
    if first.startswith("#part-handler"):
        return "part-handler"
    if first.startswith("#upstart-job"):
        return "upstart-job"
    return "plain"


__all__ = ["CONFIG_TYPES", "CloudConfig", "MultipartMime", "SoftwareConfig", "StructuredConfig"]
