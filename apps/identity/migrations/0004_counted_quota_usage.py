"""The resources counted from their own rows (``quotas.register(counter=)``: ports) keep no usage row
any more: the rows they had are dropped, so that nothing (the admin console) shows a stale figure."""
from django.db import migrations


def drop_counted_usage(apps, schema_editor):
    from apps.identity import quotas

    names = quotas.counted_names()
    if names:
        apps.get_model("identity", "QuotaUsage").objects.filter(resource__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [("identity", "0003_credentials")]
    operations = [migrations.RunPython(drop_counted_usage, migrations.RunPython.noop)]
