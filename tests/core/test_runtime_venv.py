"""Every module of the portal, the apps and the workers imports in the venv `make run` builds
(requirements.txt alone), with Django set up as `manage.py` sets it up."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.capabilities import needs
from tests.runtime_venv import ROOT, RUNTIME_PYTHON, SKIP_REASON

pytestmark = needs(SKIP_REASON)

IMPORT_ALL = r"""
import importlib, pathlib, sys
import django
django.setup()
root = pathlib.Path(".")
names = ["manage"]
for top in ("portal", "apps", "workers", "lib"):
    for path in sorted((root / top).rglob("*.py")):
        parts = list(path.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # every failure, not only the first
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names), "modules")
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_runtime_module_imports_with_requirements_txt_alone(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", STRATUS_DATA_DIR=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([str(RUNTIME_PYTHON), "-c", IMPORT_ALL], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(proc.stdout.split()[0]) > 150, proc.stdout  # the walk found the code base


def test_the_runtime_venv_has_no_test_requirements() -> None:
    """What makes the test above meaningful: the test set's packages are not there."""
    for module in ("pytest", "openstack", "playwright", "hypothesis", "moto"):
        proc = subprocess.run([str(RUNTIME_PYTHON), "-c", f"import {module}"], capture_output=True, text=True)
        assert proc.returncode != 0, f"{module} is importable in {RUNTIME_PYTHON}: it is not requirements.txt alone"


@pytest.mark.parametrize("command", [["check", "--fail-level", "ERROR"], ["migrate", "--noinput", "-v0"]])
def test_manage_py_runs_with_requirements_txt_alone(tmp_path, command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(STRATUS_DATA_DIR=str(tmp_path))  # SQLite in the data dir: make run's default
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run([str(RUNTIME_PYTHON), "manage.py", *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
