"""Settings are read once, in portal/settings.py: code under apps/ and workers/ reads `settings.X`, never
the environment and never `getattr(settings, "X", default)` (a second default that drifts from the
first). `manage.py up` composes its children's environment in portal/launcher.py, outside both."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "environb"):
            found.append(f"{where} os.{node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "settings":
            found.append(f"{where} getattr(settings, ...)")
    return found


def test_code_reads_settings_not_the_environment():
    offences = []
    for folder in ("apps", "workers", "lib"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            offences += _offences(path)
    assert not offences, "\n".join(offences)
