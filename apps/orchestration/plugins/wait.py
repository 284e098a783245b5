"""Wait conditions: a handle a guest signals through a URL (``apps.orchestration.signals``) and the
condition that waits, in ``check_create_complete``, until ``count`` SUCCESS signals arrived at it (a
FAILURE signal fails it, and so does its timeout). Heat's OS::Heat::WaitCondition(Handle) and the
CloudFormation AWS::CloudFormation::WaitCondition(Handle), whose handle's Ref is the presigned URL.

A handle keeps its signals in its data (``signals``: one entry per id, in arrival order, a repeated id
replacing its entry) and shows them as its metadata, as Heat does.
"""
from __future__ import annotations

import json
import time
from typing import Any

from django.conf import settings

from apps.orchestration import signals
from apps.orchestration.plugins.base import (
    INTEGER,
    NUMBER,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    ResourceFailed,
    register,
)

SUCCESS, FAILURE = "SUCCESS", "FAILURE"
MAX_SIGNALS = 1000  # distinct ids a handle keeps (a guest looping on new ids is refused past it)
MAX_ID = 255


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise ResourceFailed(f"The signal's {what} must be a string.")
    return str(value)


def _record(data: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``entry`` (id, status, reason, data) added or replacing the one of the same id; the
    handle's size limits enforced."""
    kept = [s for s in data.get("signals") or [] if s.get("id") != entry["id"]]
    if len(kept) >= MAX_SIGNALS:
        raise ResourceFailed(f"The handle keeps at most {MAX_SIGNALS} signals.")
    kept.append(entry)
    if len(json.dumps(kept)) > settings.STRATUS_MAX_HEAT_BODY:
        raise ResourceFailed(f"The handle keeps at most {settings.STRATUS_MAX_HEAT_BODY} bytes of signal data.")
    return {**data, "signals": kept}


class _Handle(Plugin):
    cfn: bool = False

    def signal(self, physical_id: str, data: dict[str, Any], details: Any) -> Outcome:
        if details is None or details == "":
            details = {}
        if not isinstance(details, dict):
            raise ResourceFailed("The signal's details must be a JSON object.")
        keys = ("Status", "Reason", "UniqueId", "Data") if self.cfn else ("status", "reason", "id", "data")
        unknown = sorted(set(details) - set(keys))
        if unknown:
            raise ResourceFailed(f"Metadata format invalid: unknown keys {unknown} (expected {list(keys)}).")
        status_key, reason_key, id_key, data_key = keys
        status = details.get(status_key, None if self.cfn else SUCCESS)
        if status not in (SUCCESS, FAILURE):
            raise ResourceFailed(f"Metadata format invalid: {status_key} must be {SUCCESS} or {FAILURE}.")
        count = len(data.get("signals") or [])
        sig_id = _text(details.get(id_key), id_key) or str(count + 1)
        if len(sig_id) > MAX_ID:
            raise ResourceFailed(f"The signal's {id_key} may be at most {MAX_ID} characters.")
        reason = _text(details.get(reason_key), reason_key) or f"Signal {sig_id} received"
        entry = {"id": sig_id, "status": status, "reason": reason, "data": details.get(data_key)}
        data = _record(data, entry)
        data["metadata"] = self.metadata(data["signals"])
        return Outcome(physical_id=physical_id, data=data, reason=f"status:{status} reason:{reason}")

    def metadata(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.cfn:
            return {e["id"]: {"Data": e["data"], "Reason": e["reason"], "Status": e["status"], "UniqueId": e["id"]}
                    for e in entries}
        return {e["id"]: {"data": e["data"], "reason": e["reason"], "status": e["status"]} for e in entries}


@register
class WaitConditionHandle(_Handle):
    type_name = "OS::Heat::WaitConditionHandle"
    description = ("Resource for managing signals from instances: a URL and token they signal through, and "
                   "a ready curl command that does it.")
    properties_schema = {
        "signal_transport": Prop(STRING, "How the client signals the handle: a token-free URL with its "
                                 "secret (TOKEN_SIGNAL and HEAT_SIGNAL both give it).", default="TOKEN_SIGNAL",
                                 allowed_values=("TOKEN_SIGNAL", "HEAT_SIGNAL", "NO_SIGNAL")),
    }
    attributes_schema = {
        "token": Attr("The secret of this handle's signal URL (sent as X-Auth-Token or ?token=)."),
        "endpoint": Attr("Endpoint/url which can be used for signalling handle."),
        "curl_cli": Attr("Convenience attribute, provides curl CLI command prefix, which can be used for "
                         "signalling handle completion or failure: append --data-binary "
                         "'{\"status\": \"SUCCESS\"}' (or FAILURE, with reason, data and id)."),
        "signal": Attr("JSON serialized map that includes the endpoint, token and the URL with the token, "
                       "which can be used for signalling this handle.", "map"),
    }

    def create(self, props: dict[str, Any]) -> Outcome:
        if props.get("signal_transport") == "NO_SIGNAL":
            return Outcome(physical_id=self.context.physical_name())
        secret, full_url, data = signals.issue(self.context)
        endpoint = signals.endpoint(self.context.stack_id, self.context.resource_name)
        curl = (f"curl -i -X POST -H 'X-Auth-Token: {secret}' -H 'Content-Type: application/json' "
                f"-H 'Accept: application/json' '{endpoint}'")
        return Outcome(physical_id=self.context.physical_name(), data=data, attributes={
            "token": secret, "endpoint": endpoint, "curl_cli": curl,
            "signal": {"endpoint": endpoint, "token": secret, "url": full_url}})


@register
class CfnWaitConditionHandle(_Handle):
    type_name = "AWS::CloudFormation::WaitConditionHandle"
    description = ("AWS compatible wait condition handle: its Ref is a presigned URL that cfn-signal (or "
                   "curl -X PUT) signals with {Status, Reason, UniqueId, Data}.")
    cfn = True

    def create(self, props: dict[str, Any]) -> Outcome:  # noqa: ARG002 - the interface
        _, full_url, data = signals.issue(self.context, nbytes=24)
        if len(full_url) > 255:
            raise ResourceFailed("The handle's presigned URL would be longer than 255 characters: use a shorter "
                                 "resource name.")
        return Outcome(physical_id=full_url, data=data)


class _Wait(Plugin):
    cfn: bool = False
    handle_key, count_key, timeout_key = "handle", "count", "timeout"

    def create(self, props: dict[str, Any]) -> Outcome:
        handle = props.get(self.handle_key)
        if not handle:
            raise ResourceFailed(f"Property {self.handle_key} is not a wait condition handle.")
        data = {"handle": str(handle), "deadline": time.time() + float(props.get(self.timeout_key) or 0)}
        return Outcome(physical_id=self.context.physical_name(), data=data, done=False, retry_after=0.5)

    def check_create_complete(self, props: dict[str, Any], data: dict[str, Any]) -> Outcome:
        from apps.orchestration import selectors

        name = self.context.resource_name
        entries = selectors.handle_signals(stack_id=self.context.stack_id, ref=data["handle"])
        if entries is None:
            raise ResourceFailed(f"WaitConditionFailure: resources.{name}: its handle {data['handle']} "
                                 f"is not a wait condition handle of this stack.")
        failures = [e["reason"] for e in entries if e["status"] == FAILURE]
        if failures:
            raise ResourceFailed(f"WaitConditionFailure: resources.{name}: {';'.join(failures)}")
        successes = [e for e in entries if e["status"] == SUCCESS]
        count = int(props.get(self.count_key) or 1)
        if len(successes) >= count:
            shown = json.dumps({e["id"]: e["data"] for e in successes})
            return Outcome(data=data, attributes={"Data": shown} if self.cfn else {"data": shown})
        if time.time() >= data["deadline"]:
            reasons = ";".join(e["reason"] for e in successes)
            raise ResourceFailed(f"WaitConditionTimeout: resources.{name}: {len(successes)} of {count} received"
                                 + (f" - {reasons}" if reasons else ""))
        return Outcome(data=data, done=False, retry_after=min(1.0, max(data["deadline"] - time.time(), 0.1)))


@register
class WaitCondition(_Wait):
    type_name = "OS::Heat::WaitCondition"
    description = "Resource for handling signals received by WaitConditionHandle: waits for count of them."
    properties_schema = {
        "handle": Prop(STRING, "A reference to the wait condition handle used to signal this wait condition.",
                       required=True),
        "timeout": Prop(NUMBER, "The number of seconds to wait for the correct number of signals to arrive.",
                        required=True, min=1, max=43200),
        "count": Prop(INTEGER, "The number of success signals that must be received before the stack creation "
                      "process continues.", default=1, min=1, update_allowed=True),
    }
    attributes_schema = {"data": Attr("JSON string containing data associated with wait condition signals sent "
                                      "to the handle.")}


@register
class CfnWaitCondition(_Wait):
    type_name = "AWS::CloudFormation::WaitCondition"
    description = "AWS compatible wait condition: waits for Count signals to its Handle's presigned URL."
    cfn = True
    handle_key, count_key, timeout_key = "Handle", "Count", "Timeout"
    properties_schema = {
        "Handle": Prop(STRING, "A reference to the wait condition handle (its presigned URL).", required=True),
        "Timeout": Prop(NUMBER, "The number of seconds to wait for the correct number of signals to arrive.",
                        required=True, min=1, max=43200),
        "Count": Prop(INTEGER, "The number of success signals that must be received before the stack creation "
                      "process continues.", default=1, min=1, update_allowed=True),
    }
    attributes_schema = {"Data": Attr("JSON string containing data associated with wait condition signals sent "
                                      "to the handle.")}


__all__ = ["CfnWaitCondition", "CfnWaitConditionHandle", "WaitCondition", "WaitConditionHandle"]
