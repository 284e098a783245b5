"""The venv a newcomer's `make run` builds: requirements.txt alone (``make venv-runtime`` makes it as
``.venv-run``, or ``STRATUS_RUNTIME_VENV``). Tests that start Stratus as `make run` does use its Python, so
a runtime import that only the test requirements satisfy fails the suite instead of a fresh machine."""
from __future__ import annotations

import os
from pathlib import Path

from tests.capabilities import missing

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_VENV = Path(os.environ.get("STRATUS_RUNTIME_VENV") or ROOT / ".venv-run")
RUNTIME_PYTHON = RUNTIME_VENV / "bin" / "python"
SKIP_REASON = "" if RUNTIME_PYTHON.exists() else missing(
    f"the runtime venv {RUNTIME_VENV} (requirements.txt alone) is not built: `make venv-runtime`")
