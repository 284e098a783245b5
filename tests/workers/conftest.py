"""Fixtures shared by the workers' tests: ``lab``, the simulated network nodes of the network driver's
and the network agent's tests (tests/network_lab.py)."""
from tests.network_lab import lab  # noqa: F401 - a fixture, registered here for tests/workers/**
