from apps.core import appconfig
from apps.core.appconfig import Quota
from apps.dashboard.panels import Panel


class ImagesConfig(appconfig.StratusAppConfig):
    name = "apps.images"
    verbose_name = "Images (Glance)"
    quota_service = "image"
    quotas = (
        Quota("images", 100, "Images a project may own", "Images", chart=True),
        Quota("image_bytes", 1 << 40, "Image data a project may store", "Image storage", unit="bytes"),
    )
    dashboard_urls = "apps.images.urls"
    panels = (Panel("Compute", "Images", "images:index", icon="image", order=30),)

    def on_bootstrap(self, *, result: dict) -> None:
        """A public demo image owned by the admin project (unless STRATUS_DEMO_IMAGE=0: the test suite's
        clouds start without images)."""
        from django.conf import settings

        if not settings.STRATUS_DEMO_IMAGE:
            return
        from apps.identity import services as identity_services
        from apps.images import services

        actor = identity_services.actor_for_session(user=result["admin"], project_id=result["projects"]["admin"].id)
        services.image_demo_ensure(actor=actor)
