"""Dashboard forms of the Stacks panel. Launching is two steps: ``TemplateForm`` picks the template (a file,
pasted text or an example of the library), then ``StackForm`` carries it (as text) with the stack's name
and options, and ``ParametersForm`` is built from what ``services.template_validate`` says of the
template's parameters (the engine's own parsing: types, constraints, hidden, defaults, groups; custom constraints
become selects of what the caller may use). Updating a stack is the same two steps: ``UpdateTemplateForm``
(a file, pasted text, or the stack's current template), then ``StackUpdateForm`` and
``UpdateParametersForm`` (filled with the stack's current values). The
services check everything again: the form's HTML limits are only a convenience."""
from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings

from apps.orchestration.examples import EXAMPLES

SOURCES = (("example", "An example template"), ("text", "Template text"), ("file", "A template file"))
PREFIX = "param_"


def _max_template() -> int:
    return int(settings.STRATUS_MAX_HEAT_BODY)


class TemplateForm(forms.Form):
    source = forms.ChoiceField(choices=SOURCES, initial="example", widget=forms.RadioSelect, label="Template from")
    example = forms.ChoiceField(choices=[(e.key, e.title) for e in EXAMPLES], required=False,
                                label="Example template")
    template_text = forms.CharField(required=False, label="Template",
                                    widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false",
                                                                 "class": "mono"}),
                                    help_text="HOT or CloudFormation, YAML or JSON.")
    template_file = forms.FileField(required=False, label="Template file",
                                    help_text="A .yaml, .yml, .json or .template file.")
    environment = forms.CharField(required=False, label="Environment", strip=False,
                                  widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"}),
                                  help_text="parameters, parameter_defaults and resource_registry (YAML).")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        source = data.get("source")
        text = ""
        if source == "example":
            key = data.get("example") or ""
            example = next((e for e in EXAMPLES if e.key == key), None)
            if example is None:
                self.add_error("example", "Choose an example template.")
            else:
                text = example.text
        elif source == "text":
            text = data.get("template_text") or ""
            if not text.strip():
                self.add_error("template_text", "Paste a template.")
        elif source == "file":
            upload = data.get("template_file")
            if upload is None:
                self.add_error("template_file", "Choose a template file.")
            elif upload.size > _max_template():
                self.add_error("template_file", f"The file is larger than {_max_template()} bytes.")
            else:
                try:
                    text = upload.read().decode("utf-8")
                except UnicodeDecodeError:
                    self.add_error("template_file", "The file is not UTF-8 text.")
        if len(text.encode()) > _max_template():
            self.add_error(None, f"The template is larger than {_max_template()} bytes.")
        if len((data.get("environment") or "").encode()) > _max_template():
            self.add_error("environment", f"The environment is larger than {_max_template()} bytes.")
        data["text"] = text
        return data


UPDATE_SOURCES = (("existing", "Keep the current template"), ("text", "Template text"), ("file", "A template file"))


class UpdateTemplateForm(TemplateForm):
    """An update's first step: ``TemplateForm``'s text or file, or the stack's own template (Heat's
    ``existing``: ``cleaned_data["existing"]``, and no text); the environment goes over the stack's own."""

    source = forms.ChoiceField(choices=UPDATE_SOURCES, initial="existing", widget=forms.RadioSelect,
                               label="Template from")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["example"]
        self.fields["environment"].help_text = ("Optional: parameters, parameter_defaults and resource_registry "
                                                "(YAML), merged over the stack's current environment.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["existing"] = data.get("source") == "existing"
        return data


class StackForm(forms.Form):
    """What a launch carries besides the parameters: the template (as text, from the first step)."""

    stack_name = forms.CharField(max_length=255, label="Stack name",
                                 help_text="Letters, digits, '_', '-' and '.', starting with a letter.")
    template = forms.CharField(widget=forms.HiddenInput, strip=False)
    environment = forms.CharField(widget=forms.HiddenInput, strip=False, required=False)
    timeout_mins = forms.IntegerField(required=False, min_value=1, max_value=7 * 24 * 60, label="Timeout (minutes)")
    rollback = forms.BooleanField(required=False, initial=False, label="Roll back on failure")

    def clean_template(self) -> str:
        text = self.cleaned_data["template"]
        if len(text.encode()) > _max_template():
            raise forms.ValidationError(f"The template is larger than {_max_template()} bytes.")
        return text

    def clean_environment(self) -> str:
        text = self.cleaned_data.get("environment") or ""
        if len(text.encode()) > _max_template():
            raise forms.ValidationError(f"The environment is larger than {_max_template()} bytes.")
        return text


class StackUpdateForm(StackForm):
    """What an update carries besides the parameters: the new template as text, or none with ``existing``
    (the stack's own kept), the environment, and the options, given the stack's current ones."""

    existing = forms.BooleanField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["stack_name"]
        self.fields["template"].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("existing") and not (data.get("template") or "").strip() and "template" not in self.errors:
            self.add_error(None, "Give a template, or keep the current one.")
        return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)


def _field(name: str, spec: dict[str, Any], lookups: dict[str, list[tuple[str, str]]]) -> forms.Field:
    """The field of one parameter as template-validate shows it (Heat's CFN-style keys); a custom
    constraint found in ``lookups`` (the caller's images, flavors, networks, key pairs) is a select."""
    ptype = str(spec.get("Type", "String"))
    hidden = str(spec.get("NoEcho", "false")).lower() == "true"
    has_default = "Default" in spec or "Value" in spec  # a value from the environment needs none given
    value = spec.get("Value", spec.get("Default"))
    label = str(spec.get("Label") or name)
    help_text = " ".join(p for p in (str(spec.get("Description") or ""),
                                     str(spec.get("ConstraintDescription") or "")) if p)
    required = not has_default and ptype != "Boolean"
    common: dict[str, Any] = {"label": label, "help_text": help_text, "required": required}
    if "AllowedValues" in spec and ptype != "CommaDelimitedList":
        choices = [(_text(v), _text(v)) for v in spec["AllowedValues"]]
        if not common["required"]:
            choices = [("", "—"), *choices] if not has_default else choices
        return forms.ChoiceField(choices=choices, initial=_text(value) if value is not None else None, **common)
    custom = lookups.get(str(spec.get("CustomConstraint") or ""))
    if custom is not None and ptype == "String":
        choices = list(custom)
        if value is not None and _text(value) not in {c[0] for c in choices}:
            choices.insert(0, (_text(value), _text(value)))
        if not has_default:
            choices.insert(0, ("", "Choose…"))
        return forms.ChoiceField(choices=choices, initial=_text(value) if value is not None else None, **common)
    if ptype == "Boolean":
        truthy = str(value).lower() in ("true", "1", "yes", "on", "t", "y") if value is not None else False
        return forms.BooleanField(initial=truthy, **{**common, "required": False})
    attrs: dict[str, Any] = {}
    widget: forms.Widget
    if ptype == "Number":
        attrs["step"] = "any"
        for key, attr in (("MinValue", "min"), ("MaxValue", "max")):
            if spec.get(key) is not None:
                attrs[attr] = spec[key]
        widget = forms.NumberInput(attrs=attrs)
    else:
        for key, attr in (("MinLength", "minlength"), ("MaxLength", "maxlength")):
            if spec.get(key) is not None:
                attrs[attr] = int(spec[key])
        if spec.get("AllowedPattern") and ptype == "String":
            attrs["pattern"] = spec["AllowedPattern"]
        if hidden:
            widget = forms.PasswordInput(attrs={**attrs, "autocomplete": "new-password"}, render_value=True)
        elif ptype == "Json":
            widget = forms.Textarea(attrs={**attrs, "rows": 3, "class": "mono"})
        else:
            widget = forms.TextInput(attrs=attrs)
    return forms.CharField(widget=widget, initial=_text(value) if value is not None else None, strip=False,
                           **common)


class ParametersForm(forms.Form):
    """The fields of a template's parameters (``validated``: what services.template_validate answered),
    grouped in fieldsets as its parameter_groups say; ``values()`` are the given values as text, which
    the engine converts and checks against the constraints."""

    def __init__(self, *args: Any, validated: dict[str, Any],
                 lookups: dict[str, list[tuple[str, str]]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.specs: dict[str, dict[str, Any]] = dict(validated.get("Parameters") or {})
        for name, spec in self.specs.items():
            self.fields[PREFIX + name] = _field(name, spec, lookups or {})
        self.fieldsets: list[tuple[str, list[Any]]] = []
        placed: set[str] = set()
        for group in validated.get("ParameterGroups") or []:
            names = [n for n in (group.get("parameters") or []) if n in self.specs and n not in placed]
            if names:
                placed.update(names)
                self.fieldsets.append((str(group.get("label") or "Parameters"), [self[PREFIX + n] for n in names]))
        rest = [n for n in self.specs if n not in placed]
        if rest and self.fieldsets:
            self.fieldsets.append(("Other parameters", [self[PREFIX + n] for n in rest]))
        elif not self.fieldsets:
            self.fieldsets = []  # no groups: the plain list of fields

    def values(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in self.specs:
            value = self.cleaned_data.get(PREFIX + name)
            if isinstance(self.fields[PREFIX + name], forms.BooleanField):
                out[name] = "true" if value else "false"
            elif value not in (None, ""):
                out[name] = str(value)
        return out

    def error_on(self, message: str) -> str | None:
        """The field a service's message is about (Heat names the parameter: "Parameter 'x' is invalid")."""
        for name in self.specs:
            if f"Parameter '{name}'" in message or f"parameter {name}" in message.lower():
                return PREFIX + name
        return None


MASK = "******"


class UpdateParametersForm(ParametersForm):
    """The parameters form of an update, filled with the stack's current values (``current``: as
    services.stack_parameters_shown gives them). A hidden parameter the stack has stays blank (its value
    never goes to the page) and is not required: left blank, the update keeps it."""

    def __init__(self, *args: Any, current: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept: set[str] = set()
        for name, spec in self.specs.items():
            if name not in current:
                continue
            field = self.fields[PREFIX + name]
            if str(spec.get("NoEcho", "false")).lower() == "true" or current[name] == MASK:
                self.kept.add(name)
                field.required = False
                field.initial = ""
                field.help_text = " ".join(p for p in (field.help_text, "Leave blank to keep the current value.") if p)
                self[PREFIX + name].help_text = field.help_text  # the fieldsets' bound field, made already
            elif isinstance(field, forms.BooleanField):
                field.initial = str(current[name]).lower() in ("true", "1", "yes", "on", "t", "y")
            else:
                field.initial = _text(current[name])

    def arguments(self, stored: Any) -> tuple[dict[str, str], list[str]]:
        """(parameters, clear_parameters) for the update (Heat's PATCH, which merges the given values over
        the stored ones ``stored``): the values given; a stored one not given is cleared (back to its
        default, or gone from a template that no longer has it) unless it is a hidden one left blank."""
        given = self.values()
        return given, sorted(n for n in stored if n not in given and n not in self.kept)
