"""The one AppConfig every Stratus component subclasses: it declares, as data, the quota resources it
counts, the dashboard URLs it mounts and the panels it adds, and overrides the two hooks identity's
signals call; ``ready()`` does the registering once, the same way for every component.

    from apps.core import appconfig
    from apps.dashboard.panels import Panel

    class ComputeConfig(appconfig.StratusAppConfig):
        name = "apps.compute"
        label = "compute"
        quota_service = "compute"
        quotas = (Quota("instances", 10, "Instances"), ...)   # apps.identity.quotas.register each
        dashboard_urls = "apps.compute.urls"                  # /dashboard/compute/, namespace "compute"
        panels = (Panel("Compute", "Instances", "compute:instances", icon="server", order=10), ...)

        def on_bootstrap(self, *, result: dict) -> None:      # after identity's bootstrap
            ...

        def project_holdings(self, *, project_id: str) -> list[str]:  # before identity deletes a project
            ...

(Import the module, not the class: Django takes the one AppConfig subclass an ``apps.py`` defines.)
"""
from __future__ import annotations

from typing import NamedTuple

from django.apps import AppConfig

from apps.dashboard.panels import Panel


class Quota(NamedTuple):
    """A countable resource and its default limit (-1: unlimited), with how people read it: its
    label, the unit of its figures (count, MiB, GiB, bytes) and whether the overview charts it."""

    name: str
    default: int
    description: str
    label: str = ""
    unit: str = "count"
    chart: bool = False
    counter: str = ""  # counted from its rows: the dotted path of f(project_id) -> int (quotas.register)


class StratusAppConfig(AppConfig):
    quota_service: str = ""          # the service a quota resource belongs to (compute, image, network, volume)
    quotas: tuple[Quota, ...] = ()
    dashboard_urls: str = ""         # the module of the component's dashboard urlpatterns
    dashboard_prefix: str = ""       # where they are mounted: /dashboard/<prefix>/ (default: the label)
    panels: tuple[Panel, ...] = ()

    def ready(self) -> None:
        from apps.dashboard import panels
        from apps.identity import quotas, signals

        for quota in self.quotas:
            quotas.register(quota.name, default=quota.default, service=self.quota_service,
                            description=quota.description, label=quota.label, unit=quota.unit,
                            chart=quota.chart, counter=quota.counter)
        signals.bootstrapped.connect(self._bootstrapped, dispatch_uid=f"{self.label}-bootstrapped")
        signals.project_deleting.connect(self._project_deleting, dispatch_uid=f"{self.label}-project-holdings")
        if self.dashboard_urls:
            panels.mount(self.dashboard_prefix or self.label, self.dashboard_urls)
        for panel in self.panels:
            panels.register(panel.section, panel.name, panel.url_name, admin_only=panel.admin_only, icon=panel.icon,
                            order=panel.order)

    def on_bootstrap(self, *, result: dict) -> None:
        """After identity's bootstrap (inside its transaction, with the dict it returns: domain, projects,
        admin, demo, region): what the component makes by default, idempotently."""

    def project_holdings(self, *, project_id: str) -> list[str]:  # noqa: ARG002 (a hook's signature)
        """Before identity deletes a project: the names of what of it the component still holds on nodes
        (the deletion is refused with a 409 unless every component answers none)."""
        return []

    def _bootstrapped(self, sender: object, *, result: dict, **kwargs: object) -> None:  # noqa: ARG002
        self.on_bootstrap(result=result)

    def _project_deleting(self, sender: object, *, project_id: str, **kwargs: object) -> list[str]:  # noqa: ARG002
        return self.project_holdings(project_id=project_id)
