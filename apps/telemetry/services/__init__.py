"""Every write of telemetry, by resource: archive policies, rules and resource types (``policies``),
resources and metrics (``resources``), measures and their rollups (``measures``), samples from the
compute nodes' pollsters (``samples``), the control tier's lifecycle records (``lifecycle``), alarms and their
evaluation (``alarms``)."""
from apps.telemetry.services.alarms import (
    alarm_create,
    alarm_decide,
    alarm_delete,
    alarm_evaluate,
    alarm_history_sweep,
    alarm_notify_log,
    alarm_notify_mail,
    alarm_notify_signal,
    alarm_state_set,
    alarm_update,
    alarms_evaluate,
)
from apps.telemetry.services.lifecycle import lifecycle_accounts, lifecycle_apply, lifecycle_record
from apps.telemetry.services.measures import (
    Sample,
    UnknownItems,
    measures_add,
    measures_batch_metrics,
    measures_batch_resources,
    measures_ingest,
    measures_sweep,
    parse_measures,
)
from apps.telemetry.services.policies import (
    archive_policy_create,
    archive_policy_defaults_ensure,
    archive_policy_delete,
    archive_policy_rule_create,
    archive_policy_rule_delete,
    archive_policy_rule_rename,
    archive_policy_update,
    policy_for_metric_name,
    resource_type_create,
    resource_type_delete,
)
from apps.telemetry.services.reports import (
    report_run,
    report_run_delete,
    report_run_execute,
    report_schedule_create,
    report_schedule_delete,
    report_schedule_update,
    report_schedules_due,
)
from apps.telemetry.services.resources import (
    metric_create,
    metric_delete,
    metric_for_change,
    resource_batch_delete,
    resource_create,
    resource_delete,
    resource_for_change,
    resource_update,
    resource_uuid,
)
from apps.telemetry.services.samples import samples_from_node

__all__ = [
    "Sample", "UnknownItems", "alarm_create", "alarm_decide", "alarm_delete", "alarm_evaluate", "alarm_history_sweep",
    "alarm_notify_log", "alarm_notify_mail", "alarm_notify_signal", "alarm_state_set", "alarm_update",
    "alarms_evaluate", "archive_policy_create",
    "archive_policy_defaults_ensure", "archive_policy_delete", "archive_policy_rule_create",
    "archive_policy_rule_delete", "archive_policy_rule_rename", "archive_policy_update", "lifecycle_accounts",
    "lifecycle_apply", "lifecycle_record", "measures_add", "measures_batch_metrics", "measures_batch_resources",
    "measures_ingest", "measures_sweep", "metric_create", "metric_delete", "metric_for_change", "parse_measures",
    "policy_for_metric_name", "report_run", "report_run_delete", "report_run_execute", "report_schedule_create",
    "report_schedule_delete", "report_schedule_update", "report_schedules_due", "resource_batch_delete",
    "resource_create", "resource_delete", "resource_for_change", "resource_type_create", "resource_type_delete",
    "resource_update", "resource_uuid", "samples_from_node",
]
