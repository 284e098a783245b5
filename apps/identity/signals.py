"""Signals other components listen to (connected in their AppConfig.ready)."""
from django.dispatch import Signal

# Sent at the end of services.bootstrap, inside its transaction, with ``result`` (the dict it
# returns: domain, projects, admin, demo, region). Components add their own bootstrap state
# (e.g. networking's external network) from a receiver, idempotently.
bootstrapped = Signal()

# Sent by services.project_delete, inside its transaction, before the project goes, with
# ``project_id``. A component whose resources of that project still live on nodes (servers, volumes)
# answers with the names of what holds it (a list of strings, empty when nothing does); the deletion
# is then refused with a 409, since the rows would go and the guests and files would stay.
project_deleting = Signal()
