"""Which node-agent code under workers/ still reaches the database (issue 16: nodes hold no database
credentials; they get plain values in their task messages and report by message, ``workers/control_bus.py``).

Read statically (the source's imports, wherever they are: module level, inside a function, under
TYPE_CHECKING): code that imports ``apps.<app>.models``, ``.selectors`` or ``.services``, ``apps.core.tasks``
(the task records' services) or ``django.db`` uses the database.

Two kinds of code live under workers/ (``workers/drivers`` imports no Django at all and is not read here):

- control-queue task modules (``CONTROL_MODULES``, and every ``workers/<area>_control.py``): they run in the
  control tier's workers, which hold the database, and legitimately call services (orchestration, reports,
  the beat sweeps, what the nodes report);
- node agent code (``NODE_MODULES``, and the node-side functions of the ``MIXED`` modules): it runs in a
  compute, network or storage node's process, which will have no database (STRATUS_NO_DATABASE).

``KNOWN_DB_USERS`` is the node code that still reads or writes the database: it may only shrink. A module
that stops using the database must leave it (the test fails until it does, so the list stays exact), and
node code that starts using the database fails the test: report by message instead. A new module under
workers/ must be classified here."""
from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

WORKERS = Path(__file__).resolve().parents[2] / "workers"

# control-queue task modules: run where the database is (plus every workers/<area>_control.py)
CONTROL_MODULES = {"compute_control", "identity", "objects", "orchestration", "reports"}
# node agent modules: every line of them runs on a node
NODE_MODULES = {"agent", "compute", "compute_build", "compute_console", "compute_volumes", "control_bus", "network",
                "queues", "storage"}
# modules with both: the functions named here are control-queue tasks; the rest (module level included)
# is node code
MIXED = {
    "images": {"web_download"},  # cached_image runs on compute and storage nodes
    "taskrecord": {"started", "finished", "resend", "prune"},  # the signal hooks run in every worker
    "telemetry": {"node_samples", "sweep", "evaluate_alarms", "alarm_notify"},  # poll runs on a node
}

# node code that still uses the database (issue 16: what is left of the compute tasks; the network and
# storage agents and the compute volume tasks are converted). Only ever remove entries.
KNOWN_DB_USERS: set[str] = set()

DB_MODULE = re.compile(r"^(apps\.\w+\.(models|selectors|services)(\.|$)|apps\.core\.tasks$|django\.db(\.|$))")
DB_NAMES = {"models", "selectors", "services", "tasks", "db"}


def _db_imports(node: ast.AST) -> list[str]:
    """The database modules that the imports under ``node`` bring in."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            found += [a.name for a in sub.names if DB_MODULE.match(a.name)]
        elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
            if DB_MODULE.match(sub.module):
                found.append(sub.module)
            else:
                found += [f"{sub.module}.{a.name}" for a in sub.names
                          if a.name in DB_NAMES and DB_MODULE.match(f"{sub.module}.{a.name}")]
    return found


def node_imports(find: Callable[[ast.AST], list[str]]) -> dict[str, list[str]]:
    """Node code (``workers.<module>`` or, in a mixed module, ``workers.<module>`` for its node side) →
    what ``find`` reports in it (the modules of a kind it imports)."""
    users: dict[str, list[str]] = {}
    for path in sorted(WORKERS.glob("*.py")):
        name = path.stem
        if name == "__init__" or name in CONTROL_MODULES or name.endswith("_control"):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        control_functions = MIXED.get(name, set())
        nodes = [n for n in tree.body
                 if not (isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name in control_functions)]
        imports = sorted({found for n in nodes for found in find(n)})
        if imports:
            users[f"workers.{name}"] = imports
    return users


def node_db_users() -> dict[str, list[str]]:
    """Node code → the database modules it imports."""
    return node_imports(_db_imports)


def test_every_module_under_workers_is_classified() -> None:
    modules = {p.stem for p in WORKERS.glob("*.py")} - {"__init__"}
    control = CONTROL_MODULES | {m for m in modules if m.endswith("_control")}
    assert not (CONTROL_MODULES & NODE_MODULES) and not (set(MIXED) & (CONTROL_MODULES | NODE_MODULES))
    unclassified = modules - control - NODE_MODULES - set(MIXED)
    assert not unclassified, (f"classify {sorted(unclassified)} in tests/core/test_workers_no_db.py: a node "
                              "agent module (NODE_MODULES), a control-queue one, or MIXED with its control tasks")
    assert not (set(MIXED) | NODE_MODULES | CONTROL_MODULES) - modules, "a classified module is gone: drop it"
    for module, functions in MIXED.items():
        tree = ast.parse((WORKERS / f"{module}.py").read_text())
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        assert functions <= defined, f"workers/{module}.py has no {sorted(functions - defined)}: update MIXED"


def test_node_code_uses_the_database_only_where_it_is_known_to() -> None:
    users = node_db_users()
    new = {name: users[name] for name in set(users) - KNOWN_DB_USERS}
    assert not new, (f"node agent code now imports the database: {new}. A node has none (STRATUS_NO_DATABASE): "
                     "give it plain values in the task's message and report by message (workers/control_bus.py) "
                     "to a control task in workers/<area>_control.py")
    freed = KNOWN_DB_USERS - set(users)
    assert not freed, f"{sorted(freed)} no longer import the database: remove them from KNOWN_DB_USERS"


ORM_MODULE = re.compile(r"^(apps\.\w+\.models(\.|$)|django\.db(\.|$))")


def orm_users(tree: ast.AST) -> list[str]:
    """What under ``tree`` reaches the ORM itself rather than through a service or selector: imports of
    ``apps.<app>.models`` or ``django.db``, and ``<something>.objects`` (a model's manager)."""
    found = [name for name in _db_imports(tree) if ORM_MODULE.match(name)]
    found += [f"line {n.lineno}: .objects" for n in ast.walk(tree)
              if isinstance(n, ast.Attribute) and n.attr == "objects"]
    return found


def test_control_tasks_call_services_and_selectors_only() -> None:
    """A control-queue task takes plain values, calls one service or selector and acts on what it returns:
    no model, no queryset, no transaction of its own (the rule, and where it lives, is the app's)."""
    modules = {p.stem for p in WORKERS.glob("*.py")}
    control = CONTROL_MODULES | {m for m in modules if m.endswith("_control")}
    users = {m: found for m in sorted(control) if (found := orm_users(ast.parse((WORKERS / f"{m}.py").read_text())))}
    assert not users, f"control tasks use the ORM directly: {users}; move the read or write into a selector or service"


def test_the_reader_sees_orm_use() -> None:
    tree = ast.parse("\n".join([
        "from apps.compute.models import Instance",
        "from apps.volumes import services",
        "from django.db import transaction",
        "Instance.objects.filter(pk=1)",
        "services.objects_expire()",
    ]))
    assert orm_users(tree) == ["apps.compute.models", "django.db", "line 4: .objects"]


def test_the_reader_sees_database_imports() -> None:
    """The reader itself, on the shapes the modules use."""
    tree = ast.parse("\n".join([
        "from apps.compute.services import nodes",
        "from apps.volumes import services",
        "from apps.images.models import Image",
        "import apps.networks.selectors",
        "from django.db import connection",
        "from apps.core.tasks import task_record_started",
        "from apps.core.errors import NotFound",
        "from apps.images.storage import get_store",
        "from django.conf import settings",
        "from apps.compute import states",
    ]))
    assert _db_imports(tree) == ["apps.compute.services", "apps.volumes.services", "apps.images.models",
                                 "apps.networks.selectors", "django.db", "apps.core.tasks"]


STORE_MODULE = re.compile(r"^(apps\.images\.storage|apps\.objects\.storage|lib\.imagestore)(\.|$)")


def _store_imports(node: ast.AST) -> list[str]:
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            found += [a.name for a in sub.names if STORE_MODULE.match(a.name)]
        elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
            names = [sub.module] + [f"{sub.module}.{a.name}" for a in sub.names]
            found += [n for n in names if STORE_MODULE.match(n)][:1]
    return found


def test_node_code_holds_no_image_store() -> None:
    """Issue 16: a node reads and writes image data through the image API with the URLs the control tier
    signs for it (``workers.images``), never the image store (its directory or its S3 credentials)."""
    users = node_imports(_store_imports)
    assert users == {}, f"node code reaches the image store: {users}"
    assert _store_imports(ast.parse("from apps.images.storage import get_store\nfrom lib import imagestore\n"
                                    "from apps.images import storage")) == [
        "apps.images.storage", "lib.imagestore", "apps.images.storage"]
