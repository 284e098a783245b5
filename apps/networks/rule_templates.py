"""The security group rule templates of the dashboard's "Rule" dropdown (Horizon's SECURITY_GROUP_RULES):
a named protocol and port range that the rule add form turns into the arguments of
``security_group_rule_create``. The one list of them; the form and its template read it from here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuleTemplate:
    """``port_min``/``port_max`` None: the protocol's every port (or every ICMP type and code)."""

    key: str
    label: str
    protocol: str
    port_min: int | None = None
    port_max: int | None = None

    @property
    def summary(self) -> str:
        """What the dropdown shows next to the name: "TCP 22", "TCP 1-65535", "ICMP"."""
        ports = "" if self.port_min is None else (
            f" {self.port_min}" if self.port_min == self.port_max else f" {self.port_min}-{self.port_max}")
        return f"{self.protocol.upper()}{ports}"


def _tcp(key: str, label: str, port: int) -> RuleTemplate:
    return RuleTemplate(key, label, "tcp", port, port)


TEMPLATES: tuple[RuleTemplate, ...] = (
    RuleTemplate("all_tcp", "All TCP", "tcp", 1, 65535),
    RuleTemplate("all_udp", "All UDP", "udp", 1, 65535),
    RuleTemplate("all_icmp", "All ICMP", "icmp"),
    _tcp("ssh", "SSH", 22),
    _tcp("smtp", "SMTP", 25),
    RuleTemplate("dns", "DNS (UDP)", "udp", 53, 53),
    _tcp("dns_tcp", "DNS (TCP)", 53),
    _tcp("http", "HTTP", 80),
    _tcp("pop3", "POP3", 110),
    _tcp("imap", "IMAP", 143),
    _tcp("ldap", "LDAP", 389),
    _tcp("https", "HTTPS", 443),
    _tcp("smtps", "SMTPS", 465),
    _tcp("imaps", "IMAPS", 993),
    _tcp("pop3s", "POP3S", 995),
    _tcp("ms_sql", "MS SQL", 1433),
    _tcp("mysql", "MySQL", 3306),
    _tcp("rdp", "RDP", 3389),
    _tcp("postgresql", "PostgreSQL", 5432),
)
BY_KEY = {template.key: template for template in TEMPLATES}
CUSTOM = "custom"  # the dropdown's first entry: protocol and ports as typed in the form
