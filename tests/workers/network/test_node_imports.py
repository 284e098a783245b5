"""The network agent's node side holds no database (issue 16), read from the source: workers/network.py
and the driver import nothing of apps/ nor django.db (the state comes in messages; reports go out by
workers.control_bus). The process itself running with no database is test_network_agent.py's."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = [ROOT / "workers" / "network.py", *sorted((ROOT / "workers" / "drivers" / "network").rglob("*.py"))]


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_the_network_agent_imports_no_model_selector_service_nor_database() -> None:
    bad = [f"{path.relative_to(ROOT)}: {module}" for path in NODE_MODULES for module in _imports(path)
           if module == "apps" or module.startswith(("apps.", "django.db"))]
    assert bad == []
