"""Identity owns the quota tables: every other app reserves, releases, reads and resets quotas only
through identity's quota services and selectors (with ``resources=``), never its models or tables."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps as django_apps

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "apps" / "identity"
QUOTA_MODELS = sorted(m.__name__ for m in django_apps.get_app_config("identity").get_models()
                      if m.__name__.startswith("Quota"))
QUOTA_TABLES = sorted(m._meta.db_table for m in django_apps.get_app_config("identity").get_models()
                      if m.__name__.startswith("Quota"))


def quota_model_uses(source: str) -> list[str]:
    """Each place in ``source`` that reaches one of identity's quota models or tables."""
    found: list[str] = []
    modules: set[str] = set()  # local names bound to apps.identity.models
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "apps.identity.models":
            found += [f"line {node.lineno}: imports {a.name}" for a in node.names
                      if a.name in QUOTA_MODELS or a.name == "*"]
        elif isinstance(node, ast.ImportFrom) and node.module == "apps.identity":
            modules |= {a.asname or a.name for a in node.names if a.name == "models"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name == "apps.identity.models" and a.asname}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in QUOTA_MODELS:
            owner = ast.unparse(node.value)
            if owner in modules or owner == "apps.identity.models":
                found.append(f"line {node.lineno}: {owner}.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.lower()
            if any(t in text for t in QUOTA_TABLES) or any(f"identity.{m}".lower() in text for m in QUOTA_MODELS):
                found.append(f"line {node.lineno}: names {node.value!r}")
        elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("get_model")
              and any(isinstance(a, ast.Constant) and a.value in QUOTA_MODELS for a in node.args)):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_quota_models_are_known():
    assert QUOTA_MODELS == ["QuotaDefault", "QuotaLimit", "QuotaUsage"]


@pytest.mark.parametrize("source", [
    "from apps.identity.models import Project, QuotaLimit",
    "def f():\n    from apps.identity.models import QuotaUsage as U\n    return U",
    "from apps.identity.models import *",
    "from apps.identity import models\nmodels.QuotaDefault.objects.all()",
    "from apps.identity import models as m\nm.QuotaUsage._meta",
    "import apps.identity.models\napps.identity.models.QuotaLimit.objects.all()",
    "import apps.identity.models as im\nim.QuotaLimit",
    "from django.apps import apps\napps.get_model('identity', 'QuotaLimit')",
    "apps.get_model('identity.QuotaUsage')",
    "cursor.execute('UPDATE identity_quotausage SET in_use = 0')",
])
def test_the_scan_sees_each_way_in(source):
    assert quota_model_uses(source)


@pytest.mark.parametrize("source", [
    "from apps.identity.models import Project, User",
    "from apps.identity import selectors\nselectors.quota_limits(project=p)",
    "class QuotaDefault:\n    pass\nv.QuotaDefault.as_view()",
])
def test_the_scan_lets_the_services_be(source):
    assert quota_model_uses(source) == []


def test_no_module_outside_identity_touches_its_quota_models():
    offenders = []
    files = [p for top in ("apps", "workers", "lib") for p in sorted((ROOT / top).rglob("*.py"))
             if OWNER not in p.parents]
    assert len(files) > 50
    for path in files:
        offenders += [f"{path.relative_to(ROOT)} {use}" for use in quota_model_uses(path.read_text())]
    assert offenders == [], "use apps.identity's quota services and selectors instead:\n" + "\n".join(offenders)
