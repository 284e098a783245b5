"""Aodh v2's routes (mounted at /alarming/ by portal/urls.py)."""
from django.urls import re_path

from apps.telemetry.api import alarms as v

ALARM = r"(?P<alarm_id>[^/]+)"

urlpatterns = [
    re_path(r"^$", v.Versions.as_view()),
    re_path(r"^v2/?$", v.Versions.as_view()),
    re_path(r"^v2/capabilities/?$", v.Capabilities.as_view()),
    re_path(r"^v2/alarms/?$", v.Alarms.as_view()),
    re_path(rf"^v2/alarms/{ALARM}$", v.AlarmDetail.as_view()),
    re_path(rf"^v2/alarms/{ALARM}/state/?$", v.AlarmState.as_view()),
    re_path(rf"^v2/alarms/{ALARM}/history/?$", v.AlarmHistory.as_view()),
    re_path(r"^v2/query/alarms/?$", v.AlarmQuery.as_view()),
    re_path(r"^v2/query/alarms/history/?$", v.AlarmHistoryQuery.as_view()),
]
