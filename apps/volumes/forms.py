"""Dashboard forms of the volume panels (the services validate again)."""
from __future__ import annotations

from django import forms


class VolumeForm(forms.Form):
    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(max_length=255, required=False)
    size = forms.IntegerField(min_value=1, initial=1, label="Size (GiB)")
    source = forms.ChoiceField(required=False, label="Source", choices=[("", "No source, empty volume")])

    def __init__(self, *args: object, images: list[tuple[str, str]] = (), snapshots: list[tuple[str, str]] = (),
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "No source, empty volume")]
        choices += [(f"image:{i}", f"Image {n}") for i, n in images]
        choices += [(f"snapshot:{i}", f"Snapshot {n}") for i, n in snapshots]
        self.fields["source"].choices = choices


class ExtendForm(forms.Form):
    new_size = forms.IntegerField(min_value=1, label="New size (GiB)")


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(max_length=255, required=False)
    force = forms.BooleanField(required=False, label="Even if in use")
