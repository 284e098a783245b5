from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "apps.images"
    label = "images"
    verbose_name = "Images (Glance)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.dashboard import panels
        from apps.identity import quotas

        quotas.register("images", default=100, service="image", description="Images a project may own")
        quotas.register("image_bytes", default=1 << 40, service="image",
                        description="Total bytes of image data a project may store")
        panels.mount("images", "apps.images.urls")
        panels.register("Compute", "Images", "images:index", icon="image", order=30)
        from apps.identity import signals

        signals.bootstrapped.connect(_demo_image, dispatch_uid="images-demo-image")


def _demo_image(sender: object, *, result: dict, **kwargs: object) -> None:
    """After identity's bootstrap: a public demo image owned by the admin project (unless
    STRATUS_DEMO_IMAGE=0: the test suite's clouds start without images)."""
    from django.conf import settings

    if not settings.STRATUS_DEMO_IMAGE:
        return
    from apps.identity import services as identity_services
    from apps.images import services

    actor = identity_services.actor_for_session(user=result["admin"], project_id=result["projects"]["admin"].id)
    services.image_demo_ensure(actor=actor)
