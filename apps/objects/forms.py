"""The Object Store panel's forms (apps/objects/views.py)."""
from __future__ import annotations

from django import forms


class ContainerForm(forms.Form):
    name = forms.CharField(max_length=256, help_text="Any name without '/' (unique in this project).")
    public = forms.BooleanField(required=False, label="Public",
                                help_text="Anyone may read and list it without signing in (.r:*,.rlistings).")


class UploadForm(forms.Form):
    file = forms.FileField(label="File", allow_empty_file=True)
    name = forms.CharField(max_length=1024, required=False, label="Object name",
                           help_text="Empty: the file's name, in the folder shown.")


class TempUrlForm(forms.Form):
    minutes = forms.IntegerField(min_value=1, max_value=525600, initial=60, label="Valid for (minutes)",
                                 help_text="Anyone with the URL may download the object until then.")
