"""Gnocchi's default archive policies, rule and resource types; on PostgreSQL a BRIN index on the raw
measures' timestamps (rows arrive in time order)."""
from django.db import migrations

from apps.telemetry import defaults


def seed(apps, schema_editor):  # noqa: ARG001
    policy_model = apps.get_model("telemetry", "ArchivePolicy")
    rule_model = apps.get_model("telemetry", "ArchivePolicyRule")
    type_model = apps.get_model("telemetry", "ResourceType")
    for item in defaults.ARCHIVE_POLICIES:
        policy_model.objects.get_or_create(name=item["name"], defaults={k: v for k, v in item.items() if k != "name"})
    for rule in defaults.ARCHIVE_POLICY_RULES:
        rule_model.objects.get_or_create(name=rule["name"], defaults={
            "metric_pattern": rule["metric_pattern"],
            "archive_policy": policy_model.objects.get(name=rule["archive_policy"])})
    for name, attributes in defaults.RESOURCE_TYPES.items():
        type_model.objects.get_or_create(name=name, defaults={"attributes": attributes})


def brin(apps, schema_editor):  # noqa: ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE INDEX telemetry_measure_ts_brin ON telemetry_measure USING brin (timestamp)")


def unbrin(apps, schema_editor):  # noqa: ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS telemetry_measure_ts_brin")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0001_initial")]

    operations = [
        migrations.RunPython(seed, migrations.RunPython.noop),
        migrations.RunPython(brin, unbrin),
    ]
