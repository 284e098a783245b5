"""The dashboard's panel registry: each component adds its panels (and mounts its dashboard URLs)
from its AppConfig.ready(), so the shell never changes when a component arrives.

    from apps.dashboard import panels

    class ComputeConfig(AppConfig):
        def ready(self) -> None:
            panels.mount("compute", "apps.compute.urls")          # /dashboard/compute/..., namespace "compute"
            panels.register("Compute", "Instances", "compute:instances", icon="server")

The side navigation is built from the registry on every page: sections in a fixed order (known
sections first, the others after them in the order they were declared), panels by ``order`` then
name. A panel whose URL cannot be resolved yet (its component's URLs are not mounted) is left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse

# Where the well-known sections go, whichever app loads first.
SECTION_ORDER: dict[str, int] = {
    "Project": 10,
    "Compute": 20,
    "Network": 30,
    "Volumes": 40,
    "Object Store": 50,
    "Orchestration": 60,
    "Telemetry": 70,
    "Admin": 80,
    "Identity": 90,
}


@dataclass(frozen=True)
class Panel:
    section: str
    name: str
    url_name: str
    admin_only: bool = False
    icon: str = "dot"
    order: int = 100


@dataclass(frozen=True)
class Mount:
    prefix: str
    module: str
    namespace: str


@dataclass
class NavPanel:
    panel: Panel
    url: str
    active: bool = False

    @property
    def name(self) -> str:
        return self.panel.name

    @property
    def icon(self) -> str:
        return self.panel.icon


@dataclass
class NavSection:
    name: str
    panels: list[NavPanel] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return any(p.active for p in self.panels)


_PANELS: dict[str, Panel] = {}
_SECTIONS: dict[str, int] = {}
_MOUNTS: dict[str, Mount] = {}


def section(name: str, *, order: int) -> None:
    """Place a section that is not one of SECTION_ORDER's (optional)."""
    _SECTIONS[name] = order


def register(section: str, name: str, url_name: str, *, admin_only: bool = False, icon: str = "dot",
             order: int = 100) -> Panel:
    """Add a panel to the navigation (idempotent: registering a url_name again replaces it).

    ``admin_only`` panels are shown only to a session acting as admin; the views behind them
    must still go through the services' policy, the navigation only hides them.
    """
    panel = Panel(section=section, name=name, url_name=url_name, admin_only=admin_only, icon=icon, order=order)
    _PANELS[url_name] = panel
    if section not in _SECTIONS:
        _SECTIONS[section] = SECTION_ORDER.get(section, 1000 + len(_SECTIONS))
    return panel


def unregister(url_name: str) -> None:
    _PANELS.pop(url_name, None)


def registered() -> list[Panel]:
    return list(_PANELS.values())


def mount(prefix: str, module: str, *, namespace: str | None = None) -> Mount:
    """Serve ``module``'s urlpatterns under /dashboard/<prefix>/ (namespace defaults to the prefix).
    Call it from AppConfig.ready(); apps/dashboard/urls.py includes every mount."""
    entry = Mount(prefix=prefix.strip("/"), module=module, namespace=namespace or prefix.strip("/").replace("/", "_"))
    _MOUNTS[entry.prefix] = entry
    return entry


def mounts() -> list[Mount]:
    return sorted(_MOUNTS.values(), key=lambda m: m.prefix)


def nav(*, is_admin: bool, path: str = "") -> list[NavSection]:
    """The navigation a session sees: sections with their visible panels; the panel whose URL is
    the longest prefix of ``path`` is active. The dashboard's own root (the overview) is a prefix of
    every page, so it is active only on itself: a page no panel lists (settings, a form) marks none."""
    sections: dict[str, NavSection] = {}
    best: NavPanel | None = None
    panels = sorted(_PANELS.values(), key=lambda p: (_SECTIONS.get(p.section, 1000), p.section, p.order, p.name))
    for panel in panels:
        if panel.admin_only and not is_admin:
            continue
        try:
            url = reverse(panel.url_name)
        except NoReverseMatch:
            continue
        item = NavPanel(panel=panel, url=url)
        sections.setdefault(panel.section, NavSection(name=panel.section)).panels.append(item)
        covers = path == url or (path.startswith(url) and url.rstrip("/").count("/") > 1)
        if covers and (best is None or len(url) > len(best.url)):
            best = item
    if best is not None:
        best.active = True
    return list(sections.values())
