from apps.core import appconfig


class ObjectsConfig(appconfig.StratusAppConfig):
    name = "apps.objects"
    label = "objects"
    verbose_name = "Object storage (Swift)"

    def project_holdings(self, *, project_id: str) -> list[str]:
        from apps.objects.models import Container

        names = list(Container.objects.filter(project_id=project_id).values_list("name", flat=True)[:20])
        return [f"container {n}" for n in names]
