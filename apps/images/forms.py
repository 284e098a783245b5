"""Forms of the images panel: they check the shape of the input only; the rules are the services'."""
from __future__ import annotations

from typing import Any

from django import forms

from apps.images.services import CONTAINER_FORMATS, DISK_FORMATS

VISIBILITIES = [("private", "Private"), ("shared", "Shared"), ("community", "Community"), ("public", "Public")]


class ImageForm(forms.Form):
    name = forms.CharField(max_length=255)
    disk_format = forms.ChoiceField(choices=[(f, f) for f in DISK_FORMATS], initial="qcow2")
    container_format = forms.ChoiceField(choices=[(f, f) for f in CONTAINER_FORMATS], initial="bare")
    visibility = forms.ChoiceField(choices=VISIBILITIES, initial="private")
    min_disk = forms.IntegerField(min_value=0, initial=0, label="Minimum disk (GB)")
    min_ram = forms.IntegerField(min_value=0, initial=0, label="Minimum RAM (MB)")
    protected = forms.BooleanField(required=False)

    def __init__(self, *args: Any, is_admin: bool = False, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not is_admin:  # only admins publicize (the service says so too)
            self.fields["visibility"].choices = [c for c in VISIBILITIES if c[0] != "public"]
        if editing:  # formats are fixed once data is there; keep the form short
            del self.fields["disk_format"]
            del self.fields["container_format"]


class ShareForm(forms.Form):
    member = forms.CharField(max_length=255, label="Project", help_text="The id of the project to share with.")

    def __init__(self, *args: Any, projects: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if projects:
            self.fields["member"] = forms.ChoiceField(choices=projects, label="Project")
