from apps.core import appconfig
from apps.core.appconfig import Quota
from apps.dashboard.panels import Panel


class OrchestrationConfig(appconfig.StratusAppConfig):
    name = "apps.orchestration"
    label = "orchestration"
    verbose_name = "Orchestration (Heat)"
    quota_service = "orchestration"
    quotas = (  # Heat's max_stacks_per_tenant (resources per stack: settings.STRATUS_MAX_RESOURCES_PER_STACK)
        Quota("stacks", 100, "Stacks", "Stacks"),
    )
    dashboard_urls = "apps.orchestration.urls"
    panels = (Panel("Orchestration", "Stacks", "orchestration:stacks", icon="stack", order=10),)

