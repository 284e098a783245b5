"""Dashboard forms of the compute panels (the services validate again)."""
from __future__ import annotations

import base64
from typing import Any

from django import forms

from apps.compute.block_devices import BlockDevice
from apps.compute.models import NODE_ROLES
from apps.compute.services import EXTRA_SPEC_KEY_PATTERN, MAX_FLAVOR_DESCRIPTION


class KeyPairForm(forms.Form):
    name = forms.CharField(max_length=255)
    public_key = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                                 help_text="Paste an OpenSSH public key to import it; leave empty to generate a "
                                           "key pair (its private key is shown once, never stored).")


class FlavorForm(forms.Form):
    name = forms.CharField(max_length=255)
    flavor_id = forms.CharField(max_length=255, required=False, label="ID", help_text="Empty: a UUID.")
    vcpus = forms.IntegerField(min_value=1, label="vCPUs", initial=1)
    ram = forms.IntegerField(min_value=1, label="RAM (MB)", initial=512)
    disk = forms.IntegerField(min_value=0, label="Root disk (GB)", initial=1)
    ephemeral = forms.IntegerField(min_value=0, label="Ephemeral disk (GB)", initial=0)
    swap = forms.IntegerField(min_value=0, label="Swap (MB)", initial=0)
    is_public = forms.BooleanField(required=False, initial=True, label="Public")


class FlavorEditForm(forms.Form):
    """What Nova lets change of a flavor (2.55): its description; name and sizes are fixed."""

    description = forms.CharField(required=False, max_length=MAX_FLAVOR_DESCRIPTION,
                                  widget=forms.Textarea(attrs={"rows": 3}))


class ExtraSpecForm(forms.Form):
    """One extra spec to set (a key already there takes the new value)."""

    key = forms.RegexField(regex=rf"^{EXTRA_SPEC_KEY_PATTERN}$", max_length=255, label="Key",
                           help_text="e.g. hw:cpu_policy, quota:disk_read_bytes_sec",
                           error_messages={"invalid": "A key is letters, digits, '_', '-', '.' and ':' only."})
    value = forms.CharField(max_length=255, label="Value", strip=False)


class FlavorAccessForm(forms.Form):
    """A project to give a private flavor to (the choices: the projects that do not have it yet)."""

    project = forms.ChoiceField(label="Project")

    def __init__(self, data: Any = None, *, projects: list[tuple[str, str]]) -> None:
        super().__init__(data)
        self.fields["project"].choices = projects


# ---- instances -------------------------------------------------------------------------------

Choices = list[tuple[str, str]]
MAX_VOLUME_GB = 16384


BOOT_SOURCES = [("image", "Image"), ("image_volume", "Image, on a new volume"), ("volume", "Volume"),
                ("snapshot", "Volume snapshot (on a new volume)")]
MAX_METADATA_TEXT = 255  # Nova's server metadata keys and values


class KeyValueRows(forms.Widget):
    """Rows of key and value inputs, all named ``<name>_key`` / ``<name>_value`` (the page adds rows by
    copying one); the value is the list of (key, value) pairs as typed. The launch template renders it."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[tuple[str, str]]:  # noqa: ARG002
        keys, values = data.getlist(f"{name}_key"), data.getlist(f"{name}_value")
        return list(zip(keys, values + [""] * (len(keys) - len(values)), strict=False))

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:  # noqa: ARG002
        return f"{name}_key" not in data


class KeyValueField(forms.Field):
    """Key/value rows → a dict: blank rows are dropped; a value needs a key; keys are unique; both at most
    255 characters (the count is the metadata quota's, checked by the service)."""

    widget = KeyValueRows

    def to_python(self, value: Any) -> dict[str, str]:
        pairs = [(str(k).strip(), str(v).strip()) for k, v in (value or [])]
        result: dict[str, str] = {}
        errors = []
        for key, item in pairs:
            if not key and not item:
                continue
            if not key:
                errors.append(f"The value {item!r} has no key.")
            elif key in result:
                errors.append(f"The key {key!r} is given twice.")
            elif len(key) > MAX_METADATA_TEXT or len(item) > MAX_METADATA_TEXT:
                errors.append(f"The key {key[:40]!r} or its value is longer than {MAX_METADATA_TEXT} characters.")
            else:
                result[key] = item
        if errors:
            raise forms.ValidationError(errors)
        return result

    def rows(self, value: Any) -> list[tuple[str, str]]:
        """The rows to show: what was typed (or the initial dict), and one empty row to type in."""
        pairs = list(value.items()) if isinstance(value, dict) else list(value or [])
        return [*[(k, v) for k, v in pairs if k or v], ("", "")]


class LaunchForm(forms.Form):
    """The launch wizard: what ``server_create`` takes. The choices come from the selectors (the view
    passes them, each only the project's own); the service checks everything again."""

    name = forms.CharField(max_length=255, label="Instance name")
    count = forms.IntegerField(min_value=1, max_value=100, initial=1, label="Count")
    source = forms.ChoiceField(choices=BOOT_SOURCES, initial="image", label="Boot source")
    image = forms.ChoiceField(label="Image", required=False)
    volume = forms.ChoiceField(label="Volume", required=False, help_text="The project's available bootable volumes.")
    snapshot = forms.ChoiceField(label="Volume snapshot", required=False)
    volume_size = forms.IntegerField(min_value=1, max_value=MAX_VOLUME_GB, required=False, label="Volume size (GiB)",
                                     help_text="The new volume's size: at least the image's (or snapshot's); empty "
                                               "for a snapshot: its size.")
    delete_on_termination = forms.BooleanField(required=False, label="Delete the volume when the instance is deleted")
    flavor = forms.ChoiceField(label="Flavor", widget=forms.RadioSelect)
    networks = forms.MultipleChoiceField(label="Networks", required=False, widget=forms.CheckboxSelectMultiple,
                                         help_text="None chosen: the project's only network, if it has one.")
    security_groups = forms.MultipleChoiceField(label="Security groups", required=False,
                                                widget=forms.CheckboxSelectMultiple)
    key_name = forms.ChoiceField(label="Key pair", required=False)
    new_key_name = forms.CharField(max_length=255, required=False, label="New key pair",
                                   help_text="Creates the key pair now and offers its private key once for download.")
    server_group = forms.ChoiceField(label="Server group", required=False)
    config_drive = forms.BooleanField(required=False, label="Config drive",
                                      help_text="Give the guest its metadata and user data on a disk as well.")
    metadata = KeyValueField(required=False, label="Metadata")
    user_data = forms.CharField(label="User data", required=False, strip=False,
                                widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
                                help_text="A cloud-init script or cloud-config; sent base64-encoded.")
    availability_zone = forms.ChoiceField(label="Availability zone", required=False)

    NEEDS = {"image": "image", "image_volume": "image", "volume": "volume", "snapshot": "snapshot"}

    def __init__(self, data: Any = None, *, images: Choices, flavors: Choices, networks: Choices,
                 security_groups: Choices, keypairs: Choices, zones: Choices, volumes: Choices, snapshots: Choices,
                 server_groups: Choices, initial: dict[str, Any] | None = None) -> None:
        super().__init__(data, initial=initial)
        for name in ("image", "volume", "snapshot", "volume_size"):  # required by some boot sources (clean)
            self.fields[name].conditional = True  # type: ignore[attr-defined]  (no "optional" next to its label)
        self.fields["image"].choices = [("", "Choose an image"), *images]
        self.fields["volume"].choices = [("", "Choose a volume"), *volumes]
        self.fields["snapshot"].choices = [("", "Choose a snapshot"), *snapshots]
        self.fields["flavor"].choices = flavors
        self.fields["networks"].choices = networks
        self.fields["security_groups"].choices = security_groups
        self.fields["key_name"].choices = [("", "No key pair"), *keypairs]
        self.fields["server_group"].choices = [("", "None"), *server_groups]
        self.fields["availability_zone"].choices = [("", "Any zone"), *zones]
        if initial is None:
            self.fields["security_groups"].initial = [value for value, label in security_groups
                                                      if label == "default"][:1]
            if len(networks) == 1:
                self.fields["networks"].initial = [networks[0][0]]

    @classmethod
    def carried(cls, data: Any, **choices: Any) -> LaunchForm:
        """An unbound form showing what ``data`` (a POST) had typed, without its errors: the form again
        after an inline step (a key pair made), ``choices`` the view's with what that step changed."""
        probe = cls(data, **choices)
        initial = {name: field.widget.value_from_datadict(data, {}, name) for name, field in probe.fields.items()}
        return cls(initial=initial, **choices)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        source = data.get("source")
        needed = self.NEEDS.get(source or "")
        if needed and not data.get(needed):
            self.add_error(needed, f"Choose the {self.fields[needed].label.lower()} to boot from.")
        if source == "image_volume" and data.get("volume_size") is None and "volume_size" not in self.errors:
            self.add_error("volume_size", "Give the size of the new volume.")
        return data

    def block_device(self) -> BlockDevice | None:
        """The root disk as the typed block device mapping the API's parser makes (None: the image on
        the node's local disk): the chosen image, volume or snapshot as the volume at boot index 0."""
        data = self.cleaned_data
        source = data["source"]
        if source == "image":
            return None
        return BlockDevice(source_type="image" if source == "image_volume" else source, destination_type="volume",
                           uuid=data[self.NEEDS[source]], boot_index=0,
                           volume_size=data.get("volume_size") if source != "volume" else None,
                           delete_on_termination=bool(data.get("delete_on_termination")))

    def server_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``server_create``, typed as the API's parser makes them (user data
        base64-encoded, as the API sends it)."""
        data = self.cleaned_data
        user_data = data.get("user_data") or ""
        count = data["count"]
        device = self.block_device()
        return {
            "name": data["name"], "image_ref": data["image"] if device is None else "", "flavor_ref": data["flavor"],
            "networks": [{"uuid": n} for n in data["networks"]] if data["networks"] else "auto",
            "security_groups": list(data["security_groups"]),
            "key_name": data.get("key_name") or None,
            "user_data": base64.b64encode(user_data.encode()).decode() if user_data.strip() else None,
            "availability_zone": data.get("availability_zone") or None,
            "min_count": count, "max_count": count,
            "block_devices": [device] if device is not None else [],
            "group_id": data.get("server_group") or None, "config_drive": bool(data.get("config_drive")),
            "metadata": data.get("metadata") or {},
        }


NEW_FLOATING_IP = "new:"  # a floating IP choice "new:<external network id>": allocate one from that pool


class InstanceFloatingIPForm(forms.Form):
    """A floating IP for an instance: one of the project's free ones or a new one from a pool, pointed at
    one of the instance's fixed IPv4 addresses (choices "<port id>@<address>", labelled by network name)."""

    floating_ip = forms.ChoiceField(label="Floating IP")
    port = forms.ChoiceField(label="Instance address", help_text="The network and fixed IP it forwards to.")

    def __init__(self, data: Any = None, *, free: Choices, pools: Choices, ports: Choices) -> None:
        super().__init__(data)
        self.fields["floating_ip"].choices = [*free, *[(f"{NEW_FLOATING_IP}{value}", f"Allocate a new one from {label}")
                                                       for value, label in pools]]
        self.fields["port"].choices = ports
        if len(ports) == 1:
            self.fields["port"].initial = ports[0][0]
        if not ports:
            self.fields["port"].help_text = "The instance has no IPv4 address on a network a router can reach."

    def target(self) -> tuple[str | None, str | None, str, str]:
        """(the floating IP's id or None, the pool to allocate from or None, port id, fixed IP)."""
        choice = self.cleaned_data["floating_ip"]
        port_id, _, fixed = self.cleaned_data["port"].partition("@")
        if choice.startswith(NEW_FLOATING_IP):
            return None, choice.removeprefix(NEW_FLOATING_IP), port_id, fixed
        return choice, None, port_id, fixed


INSTANCE_ACTIONS = (
    "reboot_soft", "reboot_hard", "stop", "start", "pause", "unpause", "suspend", "resume", "lock", "unlock",
    "rebuild", "resize", "confirm_resize", "revert_resize", "snapshot",
)


class InstanceActionForm(forms.Form):
    """One button of the instance page: the action and, for rebuild/resize/snapshot, its choice."""

    action = forms.ChoiceField(choices=[(a, a) for a in INSTANCE_ACTIONS])
    image = forms.CharField(required=False)
    flavor = forms.CharField(required=False)
    name = forms.CharField(required=False, max_length=255)

    REQUIRED = {"rebuild": "image", "resize": "flavor", "snapshot": "name"}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        needed = self.REQUIRED.get(data.get("action", ""))
        if needed and not (data.get(needed) or "").strip():
            self.add_error(needed, f"Choose the {'snapshot name' if needed == 'name' else needed}.")
        return data



class ServiceDisableForm(forms.Form):
    disabled_reason = forms.CharField(max_length=255, required=False, label="Reason")


class UsagePeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The period ends before it starts.")
        return data


class NodeTokenForm(forms.Form):
    """A node enrolment token to make (apps/compute/services/node_enrolment.node_token_create checks the
    name, the role and the lifetime)."""

    name = forms.CharField(max_length=255, label="Node name",
                           help_text="The new machine's name: its queue is <role>.<name>.")
    role = forms.ChoiceField(choices=[(r, r) for r in NODE_ROLES], initial="compute")
    expires_hours = forms.FloatField(label="Lifetime (hours)", initial=24,
                                     help_text="The token is good for one enrolment within this time.")
