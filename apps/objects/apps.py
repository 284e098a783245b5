from apps.core import appconfig
from apps.dashboard.panels import Panel


class ObjectsConfig(appconfig.StratusAppConfig):
    name = "apps.objects"
    label = "objects"
    verbose_name = "Object storage (Swift)"
    dashboard_urls = "apps.objects.urls"
    panels = (Panel("Object Store", "Containers", "objects:containers", icon="bucket", order=10),)

    def project_holdings(self, *, project_id: str) -> list[str]:
        from apps.objects.models import Container

        names = list(Container.objects.filter(project_id=project_id).values_list("name", flat=True)[:20])
        return [f"container {n}" for n in names]
