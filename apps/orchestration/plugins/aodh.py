"""Telemetry alarms as resources: OS::Aodh::GnocchiAggregationByResourcesAlarm and its two siblings,
made and deleted through the telemetry app's alarm services as the stack's owner (Aodh's rule checks,
quotas and policy apply). Their ``alarm_actions`` are usually a ScalingPolicy's ``alarm_url``: this
cloud's token-free signal URL, which the alarm's notifier delivers in process."""
from __future__ import annotations

from typing import Any, ClassVar

from apps.orchestration.plugins.base import (
    BOOLEAN,
    INTEGER,
    LIST,
    MAP,
    NUMBER,
    STRING,
    Attr,
    Outcome,
    Plugin,
    Prop,
    register,
)

COMMON = {
    "description": Prop(STRING, "Description for the alarm.", update_allowed=True),
    "enabled": Prop(BOOLEAN, "True if alarm evaluation/actioning is enabled.", default=True, update_allowed=True),
    "alarm_actions": Prop(LIST, "A list of URLs (webhooks) to invoke when state transitions to alarm.", default=[],
                          update_allowed=True),
    "ok_actions": Prop(LIST, "A list of URLs (webhooks) to invoke when state transitions to ok.", default=[],
                       update_allowed=True),
    "insufficient_data_actions": Prop(LIST, "A list of URLs (webhooks) to invoke when state transitions to "
                                      "insufficient-data.", default=[], update_allowed=True),
    "repeat_actions": Prop(BOOLEAN, "False to trigger actions when the threshold is reached AND the alarm's state "
                           "has changed.", default=True, update_allowed=True),
    "severity": Prop(STRING, "Severity of the alarm.", default="low", allowed_values=("low", "moderate", "critical"),
                     update_allowed=True),
    "time_constraints": Prop(LIST, "Describe time constraints for the alarm.", default=[], update_allowed=True),
    "comparison_operator": Prop(STRING, "Operator used to compare specified statistic with threshold.",
                                allowed_values=("le", "ge", "eq", "lt", "gt", "ne"), update_allowed=True),
    "threshold": Prop(NUMBER, "Threshold to evaluate against.", required=True, update_allowed=True),
    "evaluation_periods": Prop(INTEGER, "Number of periods to evaluate over.", update_allowed=True),
    "granularity": Prop(INTEGER, "The time range in seconds.", update_allowed=True),
    "aggregation_method": Prop(STRING, "The aggregation method to compare to the threshold.", update_allowed=True),
}


class GnocchiAlarm(Plugin):
    alarm_type: ClassVar[str]
    rule_keys: ClassVar[tuple[str, ...]]
    needs_actor = True
    attributes_schema = {"show": Attr("Detailed information about resource.", MAP)}

    def create(self, props: dict[str, Any]) -> Outcome:
        from apps.telemetry.services import alarms

        rule = {k: props[k] for k in ("comparison_operator", "threshold", "evaluation_periods", "granularity",
                                      "aggregation_method", *self.rule_keys) if props.get(k) is not None}
        rule.setdefault("aggregation_method", "mean")
        alarm = alarms.alarm_create(
            actor=self.context.actor, name=self.context.physical_name(), alarm_type=self.alarm_type, rule=rule,
            description=props.get("description"), enabled=props.get("enabled"), severity=props.get("severity"),
            repeat_actions=props.get("repeat_actions"), alarm_actions=props.get("alarm_actions"),
            ok_actions=props.get("ok_actions"), insufficient_data_actions=props.get("insufficient_data_actions"),
            time_constraints=props.get("time_constraints") or None)
        return Outcome(physical_id=str(alarm.id), attributes={"show": alarms.alarm_snapshot(alarm)})

    def delete(self, physical_id: str, data: dict[str, Any]) -> bool:  # noqa: ARG002 - the interface
        from apps.core.errors import NotFound
        from apps.telemetry.services import alarms

        if not physical_id:
            return True
        try:
            alarms.alarm_delete(actor=self.context.actor, alarm_id=physical_id)
        except NotFound:
            pass  # already gone
        return True


@register
class GnocchiAggregationByResourcesAlarm(GnocchiAlarm):
    type_name = "OS::Aodh::GnocchiAggregationByResourcesAlarm"
    description = "A Gnocchi aggregation-by-resources alarm: a metric over every resource a query finds."
    alarm_type = "gnocchi_aggregation_by_resources_threshold"
    rule_keys = ("metric", "resource_type", "query")
    properties_schema: ClassVar[dict[str, Prop]] = {  # type: ignore[misc]
        **COMMON,
        "metric": Prop(STRING, "Metric name watched by the alarm.", required=True, update_allowed=True),
        "resource_type": Prop(STRING, "Resource type.", required=True, update_allowed=True),
        "query": Prop(STRING, "The query to filter the metrics (a JSON search).", required=True, update_allowed=True),
    }


@register
class GnocchiResourcesAlarm(GnocchiAlarm):
    type_name = "OS::Aodh::GnocchiResourcesAlarm"
    description = "A Gnocchi resources alarm: one resource's metric."
    alarm_type = "gnocchi_resources_threshold"
    rule_keys = ("metric", "resource_type", "resource_id")
    properties_schema: ClassVar[dict[str, Prop]] = {  # type: ignore[misc]
        **COMMON,
        "metric": Prop(STRING, "Metric name watched by the alarm.", required=True, update_allowed=True),
        "resource_type": Prop(STRING, "Resource type.", required=True, update_allowed=True),
        "resource_id": Prop(STRING, "Id of a resource.", required=True, update_allowed=True),
    }


@register
class GnocchiAggregationByMetricsAlarm(GnocchiAlarm):
    type_name = "OS::Aodh::GnocchiAggregationByMetricsAlarm"
    description = "A Gnocchi aggregation-by-metrics alarm: metrics given by id, aggregated."
    alarm_type = "gnocchi_aggregation_by_metrics_threshold"
    rule_keys = ("metrics",)
    properties_schema: ClassVar[dict[str, Prop]] = {  # type: ignore[misc]
        **COMMON,
        "metrics": Prop(LIST, "A list of metric ids.", required=True, update_allowed=True),
    }
