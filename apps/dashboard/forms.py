"""Forms of the shell itself (login). Components keep their forms in their own app."""
from __future__ import annotations

from django import forms

from apps.identity.models import DEFAULT_DOMAIN_ID


class LoginForm(forms.Form):
    domain = forms.CharField(max_length=255, initial="Default",
                             help_text="Domain name or ID", widget=forms.TextInput(attrs={"autocomplete": "off"}))
    username = forms.CharField(max_length=255, label="User name",
                               widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))
    password = forms.CharField(max_length=4096, strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def clean_domain(self) -> str:
        return self.cleaned_data.get("domain", "").strip() or DEFAULT_DOMAIN_ID
