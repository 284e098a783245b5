"""Why a test did not run, said one way: a missing capability of the machine, or a run that is opt-in.

Tests that need root, network namespaces, nftables, dnsmasq, qemu, libvirtd, qemu-img, tempest's venv or the
runtime venv skip with ``missing(...)``'s reason, which names what is missing. ``.ci/run`` sets
``STRATUS_REQUIRE_REAL=1``: there such a skip is a failure (tests/conftest.py's report hook), so a test
whose check is wrong, or a machine that lost a package, cannot pass CI by not running. Long runs that a
developer turns on with an environment variable skip with ``opt_in(...)``'s reason and never fail.
``make test`` ends with one line counting what skipped and why (tests/conftest.py).
"""
from __future__ import annotations

import os
from typing import NoReturn

import pytest

MISSING = "missing capability: "
OPT_IN = "opt-in: "


def require_real() -> bool:
    return os.environ.get("STRATUS_REQUIRE_REAL") == "1"


def missing(what: str) -> str:
    """The reason of a skip for a capability this machine lacks ("" stays "": nothing is missing)."""
    return f"{MISSING}{what}" if what else ""


def opt_in(variable: str, what: str) -> str:
    return f"{OPT_IN}{what} (set {variable}=1)"


def skip_missing(what: str) -> NoReturn:
    pytest.skip(missing(what))


def needs(what: str) -> pytest.MarkDecorator:
    """``@needs(reason)``: skip (or, under STRATUS_REQUIRE_REAL=1, fail) when ``reason`` is not empty."""
    return pytest.mark.skipif(bool(what), reason=missing(what) or "ok")


def skip_text(longrepr: object) -> str:
    """The reason of a skipped report: ``(path, line, "Skipped: reason")`` or a plain text."""
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def opt_in_run(variable: str, what: str) -> pytest.MarkDecorator:
    """``@opt_in_run("STRATUS_X", "why it is long")``: runs only when the variable is set; never a failure."""
    return pytest.mark.skipif(not os.environ.get(variable), reason=opt_in(variable, what))
