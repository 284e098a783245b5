"""The control tier's lifecycle records (apps.telemetry.services.lifecycle): the types snapshot,
floatingip and router, and the attributes usage is computed from on the seeded types."""
from django.db import migrations

from apps.telemetry import defaults


def seed(apps, schema_editor):  # noqa: ARG001
    type_model = apps.get_model("telemetry", "ResourceType")
    for name in defaults.RESOURCE_TYPES:
        attributes = defaults.resource_type_attributes(name)
        rtype, created = type_model.objects.get_or_create(name=name, defaults={"attributes": attributes})
        missing = {k: v for k, v in attributes.items() if k not in rtype.attributes}
        if not created and missing and name in defaults.LIFECYCLE_ATTRIBUTES:
            rtype.attributes = {**rtype.attributes, **missing}
            rtype.save(update_fields=["attributes"])


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0002_defaults_and_brin")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
