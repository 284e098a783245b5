"""The dashboard's library of example templates: files shipped with the app, named only by the keys of
``EXAMPLES`` (a request's key never becomes a path). ``available`` says whether Stratus has every
resource type an example uses (through the plugin registry, as a stack create checks it)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from apps.core.errors import NotFound
from apps.orchestration import plugins

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    file: str

    @property
    def text(self) -> str:
        return _read(self.file)

    @property
    def types(self) -> list[str]:
        doc = yaml.safe_load(self.text) or {}
        return sorted({str(r.get("type")) for r in (doc.get("resources") or {}).values() if isinstance(r, dict)})

    @property
    def missing(self) -> list[str]:
        return [t for t in self.types if plugins.plugin_for(t) is None]

    @property
    def available(self) -> bool:
        return not self.missing


EXAMPLES: tuple[Example, ...] = (
    Example("random_value", "A random string and a value", "random_value.yaml"),
    Example("network_subnet", "A network and a subnet", "network_subnet.yaml"),
    Example("server_volume", "A server with a volume", "server_volume.yaml"),
)
BY_KEY = {e.key: e for e in EXAMPLES}


@cache
def _read(file: str) -> str:
    return (HERE / file).read_text()


def example_get(key: str) -> Example:
    example = BY_KEY.get(key)
    if example is None:
        raise NotFound(f"There is no example template {key!r}.")
    return example
