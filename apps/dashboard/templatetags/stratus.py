"""Template helpers of the dashboard: inline SVG icons (no icon font, no CDN) and small formatters."""
from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# 24x24 stroke icons; a component may add its own with ICONS["name"] = "<path .../>".
ICONS: dict[str, str] = {
    "dot": '<circle cx="12" cy="12" r="3"/>',
    "cloud": '<path d="M18 10h-1.26A8 8 0 1 0 9 20h9a5 5 0 0 0 0-10z"/>',
    "overview": '<rect x="3" y="3" width="7" height="9" rx="1"/><rect x="14" y="3" width="7" height="5" rx="1"/>'
                '<rect x="14" y="12" width="7" height="9" rx="1"/><rect x="3" y="16" width="7" height="5" rx="1"/>',
    "projects": '<path d="M3 7a2 2 0 0 1 2-2h4l2 2h8a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2z"/>',
    "users": '<circle cx="9" cy="8" r="4"/><path d="M1 21v-1a6 6 0 0 1 6-6h4a6 6 0 0 1 6 6v1"/>'
             '<path d="M17 4a4 4 0 0 1 0 8M23 21v-1a6 6 0 0 0-4-5.6"/>',
    "user": '<circle cx="12" cy="8" r="4"/><path d="M4 21v-1a6 6 0 0 1 6-6h4a6 6 0 0 1 6 6v1"/>',
    "roles": '<path d="M12 2l8 4v6c0 5-3.5 8.5-8 10-4.5-1.5-8-5-8-10V6z"/><path d="M9 12l2 2 4-4"/>',
    "members": '<circle cx="9" cy="7" r="4"/><path d="M16 21v-2a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4v2"/>'
               '<path d="M19 8v6M22 11h-6"/>',
    "server": '<rect x="2" y="3" width="20" height="8" rx="2"/><rect x="2" y="13" width="20" height="8" rx="2"/>'
              '<path d="M6 7h.01M6 17h.01"/>',
    "network": '<circle cx="12" cy="5" r="2"/><circle cx="5" cy="19" r="2"/><circle cx="19" cy="19" r="2"/>'
               '<path d="M12 7v5M12 12l-6 5.5M12 12l6 5.5"/>',
    "volume": '<ellipse cx="12" cy="5" rx="9" ry="3"/><path d="M3 5v14c0 1.7 4 3 9 3s9-1.3 9-3V5"/>'
              '<path d="M3 12c0 1.7 4 3 9 3s9-1.3 9-3"/>',
    "image": '<rect x="3" y="3" width="18" height="18" rx="2"/><circle cx="8.5" cy="8.5" r="1.5"/>'
             '<path d="M21 15l-5-5L5 21"/>',
    "key": '<circle cx="7.5" cy="15.5" r="4.5"/><path d="M10.7 12.3 21 2M16 7l3 3M14 9l2 2"/>',
    "stack": '<path d="M12 2 2 7l10 5 10-5z"/><path d="M2 17l10 5 10-5M2 12l10 5 10-5"/>',
    "chart": '<path d="M3 3v18h18"/><path d="M7 15l4-4 3 3 5-6"/>',
    "bucket": '<ellipse cx="12" cy="6" rx="8" ry="3"/>'
              '<path d="M4 6l1.5 13.2A2 2 0 0 0 7.5 21h9a2 2 0 0 0 2-1.8L20 6"/>',
    "shield": '<path d="M12 2l8 4v6c0 5-3.5 8.5-8 10-4.5-1.5-8-5-8-10V6z"/>',
    "chevron": '<path d="M6 9l6 6 6-6"/>',
    "plus": '<path d="M12 5v14M5 12h14"/>',
    "edit": '<path d="M12 20h9"/><path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z"/>',
    "trash": '<path d="M3 6h18M8 6V4h8v2M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6"/>',
    "power": '<path d="M18.4 6.6a9 9 0 1 1-12.8 0M12 2v10"/>',
    "logout": '<path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9"/>',
    "check": '<path d="M20 6L9 17l-5-5"/>',
    "search": '<circle cx="11" cy="11" r="7"/><path d="M21 21l-4.3-4.3"/>',
    "activity": '<path d="M22 12h-4l-3 9L9 3l-3 9H2"/>',
    "download": '<path d="M12 3v12M7 10l5 5 5-5M5 21h14"/>',
}


@register.simple_tag
def icon(name: str, size: int = 18, css: str = "") -> SafeString:
    body = ICONS.get(name, ICONS["dot"])
    return format_html(
        '<svg class="icon {}" width="{}" height="{}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        'stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">{}</svg>',
        css, size, size, mark_safe(body))  # constant markup from ICONS


@register.filter
def limit_label(value: int) -> str:
    """A quota limit for people: -1 is unlimited."""
    return "Unlimited" if value is None or int(value) < 0 else f"{int(value):,}"


@register.filter
def humanize_name(value: str) -> str:
    """In sentence case: ``floating_ips`` -> ``Floating IPs``; ``powering-off`` -> ``Powering off``."""
    special = {"ram": "RAM", "ips": "IPs", "ip": "IP", "cpu": "CPU", "cpus": "CPUs", "vcpus": "vCPUs", "gb": "GB"}
    words = [w for w in str(value).replace("-", "_").split("_") if w]
    out = [special.get(w.lower(), w.lower()) for w in words]
    if out and out[0] == words[0].lower():
        out[0] = out[0].capitalize()
    return " ".join(out)


@register.filter
def number(value: int) -> str:
    """Thousands separated: 51200 -> 51,200."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)
