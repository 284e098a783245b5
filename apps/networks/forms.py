"""Forms of the networking panels: they check the shape of the input only; every rule (CIDR
overlap, gateway inside the subnet, quotas, protocol/port combinations, ...) is the services'."""
from __future__ import annotations

from typing import Any

from django import forms

from apps.networks import rule_templates
from apps.networks.services import FirstSubnet, PortAttributes

Choices = list[tuple[str, str]]
NUMBER = forms.TextInput(attrs={"inputmode": "numeric"})  # styled like the other text fields


def _lines(value: str) -> list[str]:
    return [part.strip() for part in value.replace(",", "\n").splitlines() if part.strip()]


class NetworkForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(max_length=255, required=False)
    admin_state_up = forms.BooleanField(required=False, initial=True, label="Enabled (admin state up)")
    shared = forms.BooleanField(required=False, label="Shared with every project")
    external = forms.BooleanField(required=False, label="External network (router gateways, floating IPs)")

    def __init__(self, *args: Any, is_admin: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not is_admin:  # only admins share or make external networks (the service says so too)
            del self.fields["shared"]
            del self.fields["external"]


class SubnetFields(forms.Form):
    """A subnet's fields; in the network create form they are optional (no CIDR, no subnet)."""

    subnet_name = forms.CharField(max_length=255, required=False, label="Subnet name")
    cidr = forms.CharField(max_length=64, label="Network address (CIDR)", help_text="e.g. 192.168.10.0/24")
    gateway_ip = forms.CharField(max_length=64, required=False, label="Gateway IP",
                                 help_text="Empty: the first address of the subnet.")
    no_gateway = forms.BooleanField(required=False, label="No gateway")
    enable_dhcp = forms.BooleanField(required=False, initial=True, label="DHCP enabled")
    dns_nameservers = forms.CharField(required=False, label="DNS name servers",
                                      widget=forms.Textarea(attrs={"rows": 2}), help_text="One address per line.")

    def subnet_kwargs(self) -> FirstSubnet:
        data = self.cleaned_data
        kwargs: FirstSubnet = {"name": data.get("subnet_name") or "", "cidr": data["cidr"].strip(),
                                  "enable_dhcp": bool(data.get("enable_dhcp")),
                                  "dns_nameservers": _lines(data.get("dns_nameservers") or "")}
        if data.get("no_gateway"):
            kwargs["gateway_ip"] = None
        elif data.get("gateway_ip"):
            kwargs["gateway_ip"] = data["gateway_ip"].strip()
        return kwargs


class NetworkCreateForm(NetworkForm, SubnetFields):
    field_order = ["name", "description", "admin_state_up", "shared", "external", "subnet_name", "cidr",
                   "gateway_ip", "no_gateway", "enable_dhcp", "dns_nameservers"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["cidr"].required = False
        self.fields["cidr"].help_text = "Optional: give a CIDR to create the network's first subnet, e.g. 10.0.0.0/24."


class SubnetForm(SubnetFields):
    pass


class SubnetEditForm(forms.Form):
    name = forms.CharField(max_length=255, required=False)
    gateway_ip = forms.CharField(max_length=64, required=False, label="Gateway IP",
                                 help_text="Empty: no gateway.")
    enable_dhcp = forms.BooleanField(required=False, label="DHCP enabled")
    dns_nameservers = forms.CharField(required=False, label="DNS name servers",
                                      widget=forms.Textarea(attrs={"rows": 2}), help_text="One address per line.")

    def subnet_changes(self) -> dict[str, Any]:
        """The subnet's fields as the service takes them (the view keeps those that changed)."""
        data = self.cleaned_data
        return {"name": data.get("name") or "", "gateway_ip": (data.get("gateway_ip") or "").strip() or None,
                "enable_dhcp": bool(data.get("enable_dhcp")),
                "dns_nameservers": _lines(data.get("dns_nameservers") or "")}


class PortForm(forms.Form):
    network = forms.ChoiceField(label="Network")
    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(max_length=255, required=False)
    fixed_ip = forms.CharField(max_length=64, required=False, label="Fixed IP address",
                               help_text="Empty: the next free address of the network's subnets.")
    admin_state_up = forms.BooleanField(required=False, initial=True, label="Enabled (admin state up)")
    port_security_enabled = forms.BooleanField(required=False, initial=True, label="Port security")
    security_groups = forms.MultipleChoiceField(required=False, widget=forms.SelectMultiple(attrs={"size": 4}),
                                                help_text="None chosen: the project's default group.")

    def __init__(self, *args: Any, networks: Choices | None = None, groups: Choices | None = None,
                 editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["network"].choices = networks or []
        self.fields["security_groups"].choices = groups or []
        if editing:
            del self.fields["network"]
            del self.fields["fixed_ip"]
            self.fields["security_groups"].help_text = ""

    def attributes(self) -> PortAttributes:
        data = self.cleaned_data
        body: PortAttributes = {"name": data.get("name") or "", "description": data.get("description") or "",
                                "admin_state_up": bool(data.get("admin_state_up")),
                                "port_security_enabled": bool(data.get("port_security_enabled"))}
        if data.get("fixed_ip"):
            body["fixed_ips"] = [{"ip_address": data["fixed_ip"].strip()}]
        if data.get("security_groups"):
            body["security_groups"] = list(data["security_groups"])
        elif not data.get("port_security_enabled"):
            body["security_groups"] = []
        return body


class RouterForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(max_length=255, required=False)
    admin_state_up = forms.BooleanField(required=False, initial=True, label="Enabled (admin state up)")
    external_network = forms.ChoiceField(required=False, label="External network (gateway)")

    def __init__(self, *args: Any, externals: Choices | None = None, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["external_network"].choices = [("", "none")] + (externals or [])
        if editing:
            del self.fields["external_network"]


class GatewayForm(forms.Form):
    network = forms.ChoiceField(label="External network")
    enable_snat = forms.BooleanField(required=False, initial=True, label="SNAT")

    def __init__(self, *args: Any, externals: Choices | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["network"].choices = externals or []


class InterfaceForm(forms.Form):
    subnet = forms.ChoiceField(label="Subnet")

    def __init__(self, *args: Any, subnets: Choices | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subnet"].choices = subnets or []


class FloatingIPForm(forms.Form):
    network = forms.ChoiceField(label="Pool (external network)")
    description = forms.CharField(max_length=255, required=False)
    port = forms.ChoiceField(required=False, label="Associate with port")

    def __init__(self, *args: Any, externals: Choices | None = None, ports: Choices | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["network"].choices = externals or []
        self.fields["port"].choices = [("", "not now")] + (ports or [])


class AssociateForm(forms.Form):
    port = forms.ChoiceField(label="Port (fixed IP)")

    def __init__(self, *args: Any, ports: Choices | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["port"].choices = ports or []

    def target(self) -> tuple[str, str | None]:
        """The choice is "<port id>" or "<port id>@<fixed ip>"."""
        port_id, _, fixed = self.cleaned_data["port"].partition("@")
        return port_id, fixed or None


class SecurityGroupForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(max_length=255, required=False)


RULE_PROTOCOLS = [("tcp", "TCP"), ("udp", "UDP"), ("icmp", "ICMP"), ("any", "Any protocol"), ("other", "Other")]


def _rule_choices() -> Choices:
    return [(rule_templates.CUSTOM, "Custom rule (protocol and ports below)"),
            *[(t.key, f"{t.label} ({t.summary})") for t in rule_templates.TEMPLATES]]


class RuleForm(forms.Form):
    """A rule: a template of ``rule_templates`` (its protocol and ports; direction, ether type and
    remote as chosen) or a custom one."""

    rule = forms.ChoiceField(choices=_rule_choices, initial=rule_templates.CUSTOM, required=False, label="Rule")
    direction = forms.ChoiceField(choices=[("ingress", "Ingress"), ("egress", "Egress")], initial="ingress")
    ethertype = forms.ChoiceField(choices=[("IPv4", "IPv4"), ("IPv6", "IPv6")], initial="IPv4")
    protocol = forms.ChoiceField(choices=RULE_PROTOCOLS, initial="tcp", required=False,
                                 help_text="Custom rules only: a template brings its own.")
    other_protocol = forms.CharField(max_length=16, required=False, label="Other protocol (name or number)")
    port_range_min = forms.IntegerField(required=False, min_value=0, max_value=65535, label="Port from",
                                        help_text="ICMP: the type.", widget=NUMBER)
    port_range_max = forms.IntegerField(required=False, min_value=0, max_value=65535, label="Port to",
                                        help_text="Empty: the same as 'from'. ICMP: the code.", widget=NUMBER)
    remote = forms.ChoiceField(choices=[("cidr", "CIDR"), ("group", "Security group")], initial="cidr",
                               label="Remote")
    remote_ip_prefix = forms.CharField(max_length=64, required=False, label="Remote CIDR",
                                       help_text="Empty: anywhere.")
    remote_group = forms.ChoiceField(required=False, label="Remote security group")
    description = forms.CharField(max_length=255, required=False)

    def __init__(self, *args: Any, groups: Choices | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["remote_group"].choices = [("", "—")] + (groups or [])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("rule") not in rule_templates.BY_KEY:  # custom (the default)
            if not data.get("protocol"):
                self.add_error("protocol", "Choose a protocol (or a rule template).")
            elif data["protocol"] == "other" and not (data.get("other_protocol") or "").strip():
                self.add_error("other_protocol", "Name the protocol (e.g. gre) or give its number.")
        if data.get("remote") == "group" and not data.get("remote_group"):
            self.add_error("remote_group", "Choose the security group the traffic comes from.")
        return data

    def rule_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        protocol: str | None = data["protocol"]
        template = rule_templates.BY_KEY.get(data.get("rule") or "")
        if template is not None:
            protocol = "ipv6-icmp" if template.protocol == "icmp" and data["ethertype"] == "IPv6" else template.protocol
            data = {**data, "port_range_min": template.port_min, "port_range_max": template.port_max}
        elif protocol == "other":
            protocol = (data.get("other_protocol") or "").strip() or None
        elif protocol == "any":
            protocol = None
        low, high = data.get("port_range_min"), data.get("port_range_max")
        if low is not None and high is None and protocol not in ("icmp", "icmpv6", "ipv6-icmp", "1", "58"):
            high = low
        kwargs: dict[str, Any] = {"direction": data["direction"], "ethertype": data["ethertype"],
                                  "protocol": protocol, "port_range_min": low, "port_range_max": high,
                                  "description": data.get("description") or ""}
        if data["remote"] == "group":
            kwargs["remote_group_id"] = data.get("remote_group") or None
        else:
            kwargs["remote_ip_prefix"] = (data.get("remote_ip_prefix") or "").strip() or None
        return kwargs
