"""The task log's filter (a GET form: which resource, which state)."""
from __future__ import annotations

from typing import Any

from django import forms

from apps.core import states


class TaskFilterForm(forms.Form):
    resource_type = forms.ChoiceField(label="Resource", required=False)
    resource_id = forms.CharField(label="Resource ID", required=False, max_length=64)
    status = forms.ChoiceField(label="State", required=False,
                               choices=[("", "any"), *((s, s) for s in states.TASK_STATUSES)])

    def __init__(self, data: Any = None, *, resource_types: list[str]) -> None:
        super().__init__(data)
        self.fields["resource_type"].choices = [("", "any"), *((t, t.replace("_", " ")) for t in resource_types)]
