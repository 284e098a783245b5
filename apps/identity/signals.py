"""Signals other components listen to (connected in their AppConfig.ready)."""
from django.dispatch import Signal

# Sent at the end of services.bootstrap, inside its transaction, with ``result`` (the dict it
# returns: domain, projects, admin, demo, region). Components add their own bootstrap state
# (e.g. networking's external network) from a receiver, idempotently.
bootstrapped = Signal()
