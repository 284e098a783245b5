"""Intrinsic functions of HOT and CloudFormation, resolved against a stack context.

``Evaluator.resolve`` walks a snippet: a map with a single key naming a function of the template's
version is a call, anything else is data. Resource references and attributes come from the context's
callbacks, so the engine decides what they are (a physical id, a live attribute).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote as urlquote
from urllib.parse import urlencode

from apps.orchestration.engine.errors import FunctionError, InvalidTemplateReference, StackValidationFailed
from apps.orchestration.engine.parameters import Parameters
from apps.orchestration.engine.parse import HOT_VERSIONS, Version

_HOT_ADDED: dict[str, set[str]] = {
    "2013-05-23": {"get_param", "get_resource", "get_attr", "get_file", "str_replace", "Fn::Select",
                   "Fn::Join", "Fn::Split", "Fn::Replace", "Fn::Base64", "Fn::GetAZs"},
    "2014-10-16": {"list_join"},
    "2015-04-30": {"repeat", "digest"},
    "2015-10-15": {"str_split"},
    "2016-04-08": {"map_merge"},
    "2016-10-14": {"map_replace", "if"},
    "2017-02-24": {"str_replace_strict", "filter"},
    "2017-09-01": {"str_replace_vstrict", "make_url", "list_concat", "list_concat_unique"},
}
# CFN-style functions HOT stopped accepting (Heat's hot.functions.Removed).
_HOT_REMOVED: dict[str, set[str]] = {
    "2014-10-16": {"Fn::Join", "Fn::Split", "Fn::Replace", "Fn::Base64", "Fn::GetAZs"},
    "2016-10-14": {"Fn::Select"},
}
_HOT_CONDITIONS_ADDED: dict[str, set[str]] = {
    "2016-10-14": {"equals", "get_param", "not", "and", "or"},
    "2017-09-01": {"contains"},
}
CFN_FUNCTIONS = {"Ref", "Fn::GetAtt", "Fn::Join", "Fn::Base64", "Fn::Select", "Fn::Split", "Fn::FindInMap",
                 "Fn::GetAZs", "Fn::Replace", "Fn::If"}
CFN_CONDITION_FUNCTIONS = {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Ref", "Fn::FindInMap", "Condition"}
HOT_PSEUDO = ("OS::stack_name", "OS::stack_id", "OS::project_id")
CFN_PSEUDO = ("AWS::StackName", "AWS::StackId", "AWS::Region")
# ``repeat`` multiplies its lists: a template may not make it build more items than this in all.
MAX_REPEAT_ITEMS = 100_000
DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


def _accumulate(table: dict[str, set[str]], date: str, removed: dict[str, set[str]] | None = None) -> set[str]:
    names: set[str] = set()
    for when in HOT_VERSIONS:
        if when > date:
            break
        names |= table.get(when, set())
        names -= (removed or {}).get(when, set())
    return names


def hot_functions(date: str) -> set[str]:
    """The functions a HOT version accepts in resource properties, metadata and outputs."""
    return _accumulate(_HOT_ADDED, date, _HOT_REMOVED)


def hot_condition_functions(date: str) -> set[str]:
    """The functions a HOT version accepts in its ``conditions`` section (none before 2016-10-14)."""
    return _accumulate(_HOT_CONDITIONS_ADDED, date)


# Known to Heat but not to this engine (yaql expressions; resource_facade, which needs a parent stack):
# refused with a clear message rather than taken as data.
UNSUPPORTED = {"yaql", "resource_facade"}
ALL_HOT = set().union(*_HOT_ADDED.values(), *_HOT_CONDITIONS_ADDED.values(), UNSUPPORTED)
ALL_CFN = CFN_FUNCTIONS | CFN_CONDITION_FUNCTIONS


@dataclass
class StackContext:
    """What the functions resolve against: the stack's identity, its files, and callbacks for resources."""

    stack_name: str = ""
    stack_id: str = ""
    project_id: str = ""
    region: str = "RegionOne"
    files: Mapping[str, str] = field(default_factory=dict)
    # name -> the resource's reference (its physical id); None while the resource does not exist yet.
    resource_ref: Callable[[str], Any] | None = None
    # (name, attribute) -> the attribute's value.
    resource_attr: Callable[[str, str], Any] | None = None
    # name -> every attribute of the resource (``get_attr: [name]``, from 2015-10-15).
    resource_attrs: Callable[[str], dict[str, Any]] | None = None
    # (name, attribute, path) -> (value, the part of the path still to walk): a resource whose attributes
    # depend on the path (a group's ``attributes``, a nested stack's ``outputs``); None: resource_attr.
    resource_attr_path: Callable[[str, str, list[Any]], tuple[Any, list[Any]]] | None = None
    availability_zones: Callable[[], list[str]] | None = None
    # who is asking (the stack's owner, when a stack is accepted): custom constraints look values up as them
    actor: Any = None


def _fail(fn: str, reason: str) -> FunctionError:
    return FunctionError(message=f'Arguments to "{fn}" {reason}')


def _path(fn: str, value: Any, path: list[Any]) -> Any:
    for key in path:
        if isinstance(value, Mapping):
            if not isinstance(key, str | int):
                raise FunctionError(message=f'Path components in "{fn}" must be strings')
            if key not in value:
                return None
            value = value[key]
        elif isinstance(value, list):
            try:
                value = value[int(key)]
            except (ValueError, TypeError):
                raise FunctionError(message=f'Path components in "{fn}" must be strings') from None
            except IndexError:
                return None
        else:
            if value is None:
                return None
            raise FunctionError(message=f'"{fn}" can\'t traverse path')
    return value


def _to_text(fn: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    raise FunctionError(message=f'"{fn}" params must be strings, numbers, lists or maps')


class Evaluator:
    """Resolves snippets of one template with given parameter values and stack context."""

    def __init__(
        self,
        *,
        version: Version,
        parameters: Parameters,
        context: StackContext,
        resources: Mapping[str, Any],
        mappings: Mapping[str, Any] | None = None,
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        self.version = version
        self.parameters = parameters
        self.context = context
        self.resources = resources
        self.mappings = mappings or {}
        self.condition_defs = conditions or {}
        self._conditions: dict[str, bool] = {}
        self._evaluating: list[str] = []
        self._repeated = 0
        self.enabled: set[str] = set(resources)  # resources whose condition holds, set by the template
        hot = version.kind == "hot"
        self.functions = hot_functions(version.date) if hot else set(CFN_FUNCTIONS)
        self.condition_functions = hot_condition_functions(version.date) if hot else set(CFN_CONDITION_FUNCTIONS)
        self.known = ALL_HOT if hot else ALL_CFN

    # ---- the walk ----
    def call_of(self, snippet: Any, allowed: set[str]) -> tuple[str, Any] | None:
        """(function, arguments) if ``snippet`` is a call of a function in ``allowed``; None if it is data."""
        if isinstance(snippet, dict) and len(snippet) == 1:
            (key, args), = snippet.items()
            if key in allowed:
                return key, args
            if key in UNSUPPORTED and self.version.kind == "hot":
                raise StackValidationFailed(message=f'The function "{key}" is not supported by this cloud.')
            if key == "Condition" and allowed is self.functions:
                return None  # a CFN condition reference is data outside the Conditions section
            if key in self.known or (self.version.kind == "hot" and key in ALL_CFN and key.startswith("Fn::")):
                where = "conditions" if allowed is self.condition_functions else "this version of the template"
                raise StackValidationFailed(
                    message=f'The function "{key}" is not supported in {where} ({self.version}).')
        return None

    def resolve(self, snippet: Any) -> Any:
        call = self.call_of(snippet, self.functions)
        if call is not None:
            return self._call(*call)
        if isinstance(snippet, dict):
            return {k: self.resolve(v) for k, v in snippet.items()}
        if isinstance(snippet, list):
            return [self.resolve(v) for v in snippet]
        return snippet

    def _call(self, fn: str, args: Any) -> Any:
        handler = getattr(self, "_fn_" + fn.replace("Fn::", "cfn_").lower())
        return handler(fn, args)

    # ---- conditions ----
    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name not in self.condition_defs:
            raise InvalidTemplateReference(resource=name, key="conditions")
        if name in self._evaluating:
            raise StackValidationFailed(
                message=f"Circular definition for condition {name}: {' -> '.join([*self._evaluating, name])}")
        self._evaluating.append(name)
        try:
            value = self.evaluate_condition(self.condition_defs[name], where=f"conditions.{name}")
        finally:
            self._evaluating.pop()
        self._conditions[name] = value
        return value

    def evaluate_condition(self, expr: Any, *, where: str) -> bool:
        """A condition expression's truth: a boolean, a condition's name, or a condition function."""
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, str):
            if expr.lower() in ("true", "false") and expr not in self.condition_defs:
                return expr.lower() == "true"
            return self.condition(expr)
        call = self.call_of(expr, self.condition_functions)
        if call is None:
            raise StackValidationFailed(message=f"Invalid condition {json.dumps(expr, default=str)} in {where}")
        fn, args = call
        if fn in ("equals", "Fn::Equals"):
            if not isinstance(args, list) or len(args) != 2:
                raise _fail(fn, "must be a list of two values")
            a, b = (self._condition_value(x) for x in args)
            return a == b
        if fn in ("not", "Fn::Not"):
            if fn == "Fn::Not":
                if not isinstance(args, list) or len(args) != 1:
                    raise _fail(fn, "must be a list of one condition")
                args = args[0]
            return not self._sub_condition(args, where)
        if fn in ("and", "or", "Fn::And", "Fn::Or"):
            if not isinstance(args, list) or len(args) < 2:
                raise _fail(fn, "must be a list of at least two conditions")
            results = (self._sub_condition(a, where) for a in args)
            return all(results) if fn in ("and", "Fn::And") else any(results)
        if fn == "contains":
            if not isinstance(args, list) or len(args) != 2:
                raise _fail(fn, "must be a list of a value and a sequence")
            value, seq = (self._condition_value(x) for x in args)
            if not isinstance(seq, list | str | dict):
                raise _fail(fn, "must have a sequence as the second argument")
            return value in seq
        if fn == "Condition":
            if not isinstance(args, str):
                raise _fail(fn, "must be a condition name")
            return self.condition(args)
        # get_param, Ref, Fn::FindInMap used directly as a condition
        return bool(self._condition_value(expr))

    def _sub_condition(self, expr: Any, where: str) -> bool:
        return self.evaluate_condition(expr, where=where)

    def _condition_value(self, snippet: Any) -> Any:
        call = self.call_of(snippet, self.condition_functions)
        if call is not None:
            fn, args = call
            if fn in ("get_param", "Ref", "Fn::FindInMap"):
                return self._call(fn, args)
            return self.evaluate_condition(snippet, where="condition")
        if isinstance(snippet, list):
            return [self._condition_value(v) for v in snippet]
        return snippet

    # ---- HOT ----
    def _fn_get_param(self, fn: str, args: Any) -> Any:
        args = self.resolve(args)
        name, path = (args[0], list(args[1:])) if isinstance(args, list) and args else (args, [])
        if not isinstance(name, str):
            raise _fail(fn, "must be a parameter name or a list starting with one")
        if name not in self.parameters:
            raise StackValidationFailed(message=f"The Parameter ({name}) was not defined in template.")
        return _path(fn, self.parameters[name], path)

    def _ref(self, fn: str, name: Any) -> Any:
        if not isinstance(name, str):
            raise _fail(fn, "must be a resource name")
        if name not in self.resources:
            raise InvalidTemplateReference(resource=name, key=fn)
        if name not in self.enabled:
            return None
        if self.context.resource_ref is None:
            return name
        return self.context.resource_ref(name)

    def _fn_get_resource(self, fn: str, args: Any) -> Any:
        return self._ref(fn, self.resolve(args))

    def _attr(self, fn: str, name: Any, attr: Any, path: list[Any]) -> Any:
        if not isinstance(name, str):
            raise _fail(fn, "must start with a resource name")
        if name not in self.resources:
            raise InvalidTemplateReference(resource=name, key=fn)
        if not isinstance(attr, str):
            raise _fail(fn, "must name an attribute")
        if name not in self.enabled:
            return None
        if self.context.resource_attr is None:
            raise FunctionError(message=f'"{fn}" cannot be resolved: no attributes are available yet')
        if self.context.resource_attr_path is not None:
            value, rest = self.context.resource_attr_path(name, attr, path)
            return _path(fn, value, rest)
        return _path(fn, self.context.resource_attr(name, attr), path)

    def _all_attrs(self, fn: str, name: Any) -> Any:
        if not isinstance(name, str) or name not in self.resources:
            raise InvalidTemplateReference(resource=name, key=fn)
        if name not in self.enabled:
            return None
        if self.context.resource_attrs is None:
            raise FunctionError(message=f'"{fn}" cannot be resolved: no attributes are available yet')
        return self.context.resource_attrs(name)

    def _fn_get_attr(self, fn: str, args: Any) -> Any:
        args = self.resolve(args)
        if isinstance(args, list) and len(args) == 1 and self.version.at_least("2015-10-15"):
            return self._all_attrs(fn, args[0])
        if not isinstance(args, list) or len(args) < 2:
            raise _fail(fn, "must be a list of a resource name, an attribute and an optional path")
        if len(args) > 2 and not self.version.at_least("2014-10-16"):
            raise _fail(fn, "may not have a path before heat_template_version 2014-10-16")
        return self._attr(fn, args[0], args[1], list(args[2:]))

    def _fn_get_file(self, fn: str, args: Any) -> Any:
        path = self.resolve(args)
        if not isinstance(path, str):
            raise _fail(fn, "must be a path")
        if path not in self.context.files:
            raise FunctionError(message=f'No content found in the "files" section for {fn} path: {path}')
        return self.context.files[path]

    def _replace(self, fn: str, template: Any, params: Any) -> str:
        if not isinstance(template, str):
            raise FunctionError(message=f'"{fn}" template must be a string')
        if not isinstance(params, dict):
            raise FunctionError(message=f'"{fn}" parameters must be a mapping')
        if fn in ("str_replace_strict", "str_replace_vstrict"):
            missing = [k for k in params if str(k) not in template]
            if missing:
                raise FunctionError(
                    message=f"The following params were not found in the template: {','.join(map(str, missing))}")
        if fn == "str_replace_vstrict":
            empty = [k for k, v in params.items() if v in (None, "")]
            if empty:
                raise FunctionError(message=f"The following params had empty values: {','.join(map(str, empty))}")
        # Longest keys first, each part of the text replaced at most once (Heat's semantics).
        keys = sorted((str(k) for k in params), key=len, reverse=True)
        values = {str(k): _to_text(fn, v) for k, v in params.items()}
        return _replace_all(template, keys, values)

    def _fn_str_replace(self, fn: str, args: Any) -> str:
        args = self.resolve(args)
        if not isinstance(args, dict) or set(args) != {"template", "params"}:
            raise _fail(fn, 'must be a map with "template" and "params"')
        return self._replace(fn, args["template"], args["params"])

    _fn_str_replace_strict = _fn_str_replace
    _fn_str_replace_vstrict = _fn_str_replace

    def _fn_list_join(self, fn: str, args: Any) -> str:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) < 2 or not isinstance(args[0], str):
            raise _fail(fn, "must be a list of a delimiter and one or more lists")
        items: list[str] = []
        for part in args[1:]:
            if part is None:
                continue
            if not isinstance(part, list):
                raise FunctionError(message=f'Incorrect arguments: Items to join must be lists. {part!r}')
            items.extend(_to_text(fn, v) for v in part)
        return args[0].join(items)

    def _fn_str_split(self, fn: str, args: Any) -> Any:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) not in (2, 3):
            raise _fail(fn, "must be a list of a delimiter, a string and an optional index")
        delim, text = args[0], args[1]
        if not isinstance(delim, str) or not isinstance(text, str):
            raise _fail(fn, "must have a string delimiter and a string to split")
        parts = text.split(delim)
        if len(args) == 2:
            return parts
        try:
            return parts[int(args[2])]
        except (ValueError, TypeError):
            raise _fail(fn, "must have an integer index") from None
        except IndexError:
            raise FunctionError(message=f'Incorrect index to "{fn}" should be between 0 and {len(parts) - 1}') \
                from None

    def _fn_repeat(self, fn: str, args: Any) -> list[Any]:
        if not isinstance(args, dict) or not {"for_each", "template"} <= set(args) or \
                set(args) - {"for_each", "template", "permutations"}:
            raise _fail(fn, 'must be a map with "for_each", "template" and optionally "permutations"')
        for_each = self.resolve(args["for_each"])
        permutations = self.resolve(args.get("permutations", True))
        if not isinstance(for_each, dict) or not for_each:
            raise FunctionError(message=f'The "for_each" argument to "{fn}" must contain a map')
        if not all(isinstance(v, list) for v in for_each.values()):
            raise FunctionError(message=f'The values of the "for_each" argument to "{fn}" must be lists')
        keys = list(for_each)
        flat = permutations in (False, "false", "False")
        count = max(len(v) for v in for_each.values()) if flat else math.prod(len(v) for v in for_each.values())
        self._repeated += count
        if self._repeated > MAX_REPEAT_ITEMS:
            raise FunctionError(message=f'"{fn}" would build more than {MAX_REPEAT_ITEMS} items')
        if flat:
            lengths = {len(v) for v in for_each.values()}
            if len(lengths) != 1:
                raise FunctionError(message='For "repeat" without permutations, the lists must be the same length')
            combos = list(zip(*for_each.values(), strict=True))
        else:
            combos = list(itertools.product(*for_each.values()))
        template = self.resolve(args["template"])
        return [_substitute(template, dict(zip(keys, combo, strict=True))) for combo in combos]

    def _fn_map_merge(self, fn: str, args: Any) -> dict[str, Any]:
        args = self.resolve(args)
        if not isinstance(args, list):
            raise _fail(fn, "must be a list of maps")
        merged: dict[str, Any] = {}
        for item in args:
            if item is None:
                continue
            if not isinstance(item, dict):
                raise FunctionError(message=f'Incorrect arguments: to "{fn}", arguments must be a list of maps')
            merged.update(item)
        return merged

    def _fn_map_replace(self, fn: str, args: Any) -> dict[str, Any]:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) != 2 or not isinstance(args[0], dict) or \
                not isinstance(args[1], dict) or set(args[1]) - {"keys", "values"}:
            raise _fail(fn, 'must be a list of a map and a map with optional "keys" and "values"')
        source, spec = args
        keys, values = spec.get("keys") or {}, spec.get("values") or {}
        if not isinstance(keys, dict) or not isinstance(values, dict):
            raise _fail(fn, 'must have maps for "keys" and "values"')
        out: dict[str, Any] = {}
        for key, value in source.items():
            new_key = keys.get(key, key)
            if new_key in out:
                raise FunctionError(message=f'key replacement {new_key} collides with a key in the input map')
            out[new_key] = values.get(value, value) if isinstance(value, str | int | float | bool) else value
        return out

    def _fn_digest(self, fn: str, args: Any) -> str:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) != 2 or not all(isinstance(a, str) for a in args):
            raise _fail(fn, "must be a list of an algorithm and a string")
        algorithm, value = args
        if algorithm.lower() not in DIGESTS:
            raise FunctionError(message=f'Algorithm must be one of {", ".join(DIGESTS)}')
        return hashlib.new(algorithm.lower(), value.encode()).hexdigest()

    def _fn_list_concat(self, fn: str, args: Any) -> list[Any]:
        args = self.resolve(args)
        if not isinstance(args, list) or not all(isinstance(a, list) or a is None for a in args):
            raise _fail(fn, "must be a list of lists")
        out: list[Any] = []
        for part in args:
            for item in part or []:
                if fn == "list_concat" or item not in out:
                    out.append(item)
        return out

    _fn_list_concat_unique = _fn_list_concat

    def _fn_filter(self, fn: str, args: Any) -> list[Any]:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) != 2 or not isinstance(args[1], list) or \
                not isinstance(args[0], list | type(None)):
            raise _fail(fn, "must be a list of the values to remove and a list")
        remove = args[0] or []
        return [item for item in args[1] if item not in remove]

    def _fn_make_url(self, fn: str, args: Any) -> str:
        args = self.resolve(args)
        keys = {"scheme", "username", "password", "host", "port", "path", "query", "fragment"}
        if not isinstance(args, dict) or set(args) - keys or "host" not in args:
            raise _fail(fn, f"must be a map with a host and optionally {', '.join(sorted(keys - {'host'}))}")
        scheme = str(args.get("scheme") or "http")
        auth = ""
        if args.get("username"):
            auth = urlquote(str(args["username"]), safe="")
            if args.get("password"):
                auth += ":" + urlquote(str(args["password"]), safe="")
            auth += "@"
        host = str(args["host"])
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        port = args.get("port")
        if port not in (None, ""):
            try:
                number = int(port)
            except (TypeError, ValueError):
                raise FunctionError(message=f'Invalid URL port "{port}"') from None
            if not 0 < number < 65536:
                raise FunctionError(message=f'Invalid URL port {number}, must be in range 1-65535')
            host += f":{number}"
        path = str(args.get("path") or "")
        url = f"{scheme}://{auth}{host}/{urlquote(path.lstrip('/'))}"
        query = args.get("query")
        if query:
            if not isinstance(query, dict):
                raise _fail(fn, 'must have a map for "query"')
            url += "?" + urlencode({k: "" if v is None else str(v) for k, v in query.items()})
        if args.get("fragment"):
            url += "#" + urlquote(str(args["fragment"]))
        return url

    def _fn_if(self, fn: str, args: Any) -> Any:
        if not isinstance(args, list) or len(args) != 3:
            raise _fail(fn, "must be a list of a condition, a value if true and a value if false")
        truth = self.evaluate_condition(args[0], where=fn)
        return self.resolve(args[1] if truth else args[2])

    _fn_cfn_if = _fn_if

    # ---- CloudFormation ----
    def _fn_ref(self, fn: str, args: Any) -> Any:
        name = self.resolve(args)
        if isinstance(name, str) and name in self.parameters:
            return self.parameters[name]
        if isinstance(name, str) and name in CFN_PSEUDO:
            return {"AWS::StackName": self.context.stack_name, "AWS::StackId": self.context.stack_id,
                    "AWS::Region": self.context.region}[name]
        return self._ref(fn, name)

    def _fn_cfn_getatt(self, fn: str, args: Any) -> Any:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) < 2:
            raise _fail(fn, "must be a list of a resource name and an attribute")
        return self._attr(fn, args[0], args[1], list(args[2:]))

    def _fn_cfn_join(self, fn: str, args: Any) -> str:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) != 2 or not isinstance(args[0], str) or \
                not isinstance(args[1], list | type(None)):
            raise _fail(fn, "must be a list of a delimiter and a list")
        return args[0].join("" if v is None else _to_text(fn, v) for v in args[1] or [])

    def _fn_cfn_base64(self, fn: str, args: Any) -> str:
        # Like Heat, no encoding: Nova takes user_data in plain text and encodes it itself.
        value = self.resolve(args)
        if not isinstance(value, str):
            raise _fail(fn, "must be a string")
        return value

    def _fn_cfn_select(self, fn: str, args: Any) -> Any:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) != 2:
            raise _fail(fn, "must be a list of an index and a list or map")
        index, collection = args
        if isinstance(collection, str):
            try:
                collection = json.loads(collection)
            except ValueError:
                collection = None
        if isinstance(collection, dict):
            return collection.get(index, "")
        if isinstance(collection, list):
            try:
                i = int(index)
            except (ValueError, TypeError):
                raise _fail(fn, "must have an integer index") from None
            return collection[i] if 0 <= i < len(collection) else ""
        if collection is None:
            return ""
        raise _fail(fn, "must select from a list or a map")

    def _fn_cfn_split(self, fn: str, args: Any) -> list[str]:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) != 2 or not all(isinstance(a, str) for a in args):
            raise _fail(fn, "must be a list of a delimiter and a string")
        return args[1].split(args[0])

    def _fn_cfn_replace(self, fn: str, args: Any) -> str:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) != 2:
            raise _fail(fn, "must be a list of a map and a string")
        return self._replace(fn, args[1], args[0])

    def _fn_cfn_findinmap(self, fn: str, args: Any) -> Any:
        args = self.resolve(args)
        if not isinstance(args, list) or len(args) != 3:
            raise _fail(fn, "must be a list of a map name, a top-level key and a second-level key")
        name, top, second = args
        try:
            return self.mappings[name][top][second]
        except (KeyError, TypeError):
            raise FunctionError(message=f'"{fn}": no value for {name}.{top}.{second} in Mappings') from None

    def _fn_cfn_getazs(self, fn: str, args: Any) -> list[str]:  # noqa: ARG002 - every handler's signature
        self.resolve(args)  # the region argument; this cloud has one
        if self.context.availability_zones is None:
            return ["nova"]
        return list(self.context.availability_zones())

    # ---- references, for the dependency graph ----
    def references(self, snippet: Any) -> set[str]:
        """Names of resources ``snippet`` refers to through get_resource/get_attr/Ref/Fn::GetAtt."""
        return self.references_static(snippet)[0]

    def references_static(self, snippet: Any) -> tuple[set[str], bool]:
        """``references``, and whether they are the same under any parameter values: no Ref (a parameter's
        name or a resource's) and no reference whose name is itself computed."""
        found: set[str] = set()
        static = True
        stack = [snippet]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if len(node) == 1:
                    (key, args), = node.items()
                    if key in self.functions:
                        name = self._reference_name(key, args)
                        if name is not None:
                            found.add(name)
                        if key == "Ref" or (key in REFERENCE_FUNCTIONS and isinstance(
                                args[0] if isinstance(args, list) and args else args, dict)):
                            static = False
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return found, static

    def _reference_name(self, key: str, args: Any) -> str | None:
        if key in ("get_resource", "Ref"):
            name = args
        elif key in ("get_attr", "Fn::GetAtt") and isinstance(args, list) and args:
            name = args[0]
        else:
            return None
        if isinstance(name, dict):
            name = self.resolve(name)
        if not isinstance(name, str):
            return None
        if key == "Ref" and (name in self.parameters or name in CFN_PSEUDO):
            return None
        if name not in self.resources:
            raise InvalidTemplateReference(resource=name, key=key)
        return name


REFERENCE_FUNCTIONS = ("get_resource", "get_attr", "Fn::GetAtt")


def _replace_all(text: str, keys: list[str], values: dict[str, str]) -> str:
    if not keys:
        return text
    key, rest = keys[0], keys[1:]
    if not key:
        return _replace_all(text, rest, values)
    return values[key].join(_replace_all(part, rest, values) for part in text.split(key))


def _substitute(template: Any, mapping: dict[str, Any]) -> Any:
    """``repeat``'s substitution of each for_each key (in keys, values, strings; whole-value lists too)."""
    if isinstance(template, str):
        if template in mapping:
            return mapping[template]
        return _replace_all(template, sorted(mapping, key=len, reverse=True),
                            {k: _to_text("repeat", v) for k, v in mapping.items()})
    if isinstance(template, dict):
        return {_substitute(k, mapping) if isinstance(k, str) else k: _substitute(v, mapping)
                for k, v in template.items()}
    if isinstance(template, list):
        return [_substitute(v, mapping) for v in template]
    return template
