"""The containers' counters become a folded base plus insert-only pending changes (issue 13's PUT rate)."""
from __future__ import annotations

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("objects", "0001_initial")]

    operations = [
        migrations.RenameField(model_name="container", old_name="object_count", new_name="base_count"),
        migrations.RenameField(model_name="container", old_name="bytes_used", new_name="base_bytes"),
        migrations.CreateModel(
            name="CounterChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("d_objects", models.BigIntegerField()),
                ("d_bytes", models.BigIntegerField()),
                ("container", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                related_name="counter_changes", to="objects.container")),
            ],
        ),
    ]
