"""Swift with the real clients against a running cloud (uvicorn, ASGI): python-swiftclient's `swift`
(upload/download/list/stat/post/copy/delete, a public container read without a token, a 20 MiB upload
in 1 MiB segments downloaded byte for byte, a temp URL) and the `openstack container`/`object` commands.
Each client call costs about a second of start-up, so the checks around those commands (account lists,
segment lists, another project's view, what is left) go through openstacksdk in-process."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from openstack import exceptions as sdk_exceptions

from tests.conftest import VENV_BIN

pytestmark = pytest.mark.e2e


def swift(cloud: Any, *args: str, user: str = "demo", check: bool = True) -> subprocess.CompletedProcess:
    binary = VENV_BIN / "swift"
    if not binary.exists():
        pytest.skip("python-swiftclient is missing: pip install -r requirements-test.txt")
    env = cloud.cli_env(user)
    env["OS_AUTH_VERSION"] = "3"
    result = subprocess.run([str(binary), "--auth-version", "3", *args], env=env, capture_output=True, text=True,
                            timeout=300, cwd=cloud.data_dir)
    if check:
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-2000:])
    return result


def storage_url(cloud: Any) -> str:
    """demo's account URL, as `swift auth` prints it (OS_STORAGE_URL): the catalog's object-store endpoint."""
    return cloud.sdk(user="demo").object_store.get_endpoint().rstrip("/")


def _names(listing: Any) -> list[str]:
    return [item.name for item in listing]


def test_swift_cli_round_trip(live_cloud, tmp_path: Path):
    cloud = live_cloud
    demo = cloud.sdk(user="demo")
    c = f"c-{secrets.token_hex(3)}"
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello from swiftclient\n" * 100)
    swift(cloud, "post", c)
    swift(cloud, "upload", c, str(src), "--object-name", "docs/hello.txt")
    assert swift(cloud, "list", c).stdout.split() == ["docs/hello.txt"]
    assert c in _names(demo.object_store.containers())
    stat = swift(cloud, "stat").stdout
    assert "Containers:" in stat and "Bytes:" in stat
    swift(cloud, "post", "-m", "color:blue", c, "docs/hello.txt")
    shown = swift(cloud, "stat", c, "docs/hello.txt").stdout
    assert "Meta Color: blue" in shown and hashlib.md5(src.read_bytes()).hexdigest() in shown
    out = tmp_path / "out.txt"
    swift(cloud, "download", c, "docs/hello.txt", "-o", str(out))
    assert out.read_bytes() == src.read_bytes()
    swift(cloud, "copy", "--destination", f"/{c}/copied.txt", c, "docs/hello.txt")
    assert sorted(swift(cloud, "list", c).stdout.split()) == ["copied.txt", "docs/hello.txt"]
    assert _names(demo.object_store.objects(c, prefix="docs/", delimiter="/")) == ["docs/hello.txt"]
    # another project's user does not see it (its own account has no such container)
    with pytest.raises(sdk_exceptions.NotFoundException):
        _names(cloud.sdk().object_store.objects(c))
    swift(cloud, "delete", c)
    assert c not in _names(demo.object_store.containers())


def test_public_container_and_temp_url(live_cloud, tmp_path: Path):
    cloud = live_cloud
    c = f"pub-{secrets.token_hex(3)}"
    page = tmp_path / "index.html"
    page.write_bytes(b"<h1>public</h1>")
    swift(cloud, "post", c)
    swift(cloud, "upload", c, str(page), "--object-name", "index.html")
    account = storage_url(cloud)
    url = f"{account}/{c}/index.html"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    swift(cloud, "post", "-r", ".r:*", c)
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == b"<h1>public</h1>" and answer.headers["X-Trans-Id"].startswith("tx")
    # a temp URL on a private container
    p = f"priv-{secrets.token_hex(3)}"
    swift(cloud, "post", p)
    swift(cloud, "upload", p, str(page), "--object-name", "secret.html")
    swift(cloud, "post", "-m", "Temp-URL-Key:s3cr3t")
    path = account.split("://", 1)[1].split("/", 1)[1]
    signed = swift(cloud, "tempurl", "GET", "120", f"/{path}/{p}/secret.html", "s3cr3t").stdout.strip()
    with urllib.request.urlopen(cloud.url + signed, timeout=10) as answer:
        assert answer.read() == b"<h1>public</h1>"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{account}/{p}/secret.html", timeout=10)
    assert refused.value.code == 401


def test_segmented_upload_of_20_mib(live_cloud, tmp_path: Path):
    cloud = live_cloud
    demo = cloud.sdk(user="demo")
    c = f"big-{secrets.token_hex(3)}"
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))
    for flags, name in ((["-S", "1048576"], "dlo.bin"), (["-S", "1048576", "--use-slo"], "slo.bin")):
        swift(cloud, "upload", c, str(big), "--object-name", name, *flags)
        segments = [n for n in _names(demo.object_store.objects(f"{c}_segments")) if n.startswith(name)]
        assert len(segments) == 20, segments
        out = tmp_path / f"out-{name}"
        swift(cloud, "download", c, name, "-o", str(out))
        assert hashlib.md5(out.read_bytes()).digest() == hashlib.md5(big.read_bytes()).digest()
        assert demo.object_store.get_object_metadata(name, c).content_length == 20971520
        swift(cloud, "delete", c, name)
    assert _names(demo.object_store.objects(f"{c}_segments")) == []


def test_openstack_container_and_object_commands(live_cloud, tmp_path: Path):
    cloud = live_cloud
    demo = cloud.sdk(user="demo")
    c = f"osc-{secrets.token_hex(3)}"

    def osc(*args: str) -> Any:
        result = cloud.openstack(*args, user="demo")
        return json.loads(result.stdout) if "-f" in args else result

    assert osc("container", "create", c, "-f", "json")[0]["container"] == c
    assert c in [row["Name"] for row in osc("container", "list", "-f", "json")]
    f = tmp_path / "data.bin"
    f.write_bytes(os.urandom(300_000))
    created = osc("object", "create", c, str(f), "--name", "data.bin", "-f", "json")
    assert created[0]["etag"] == hashlib.md5(f.read_bytes()).hexdigest()
    assert _names(demo.object_store.objects(c)) == ["data.bin"]
    shown = osc("object", "show", c, "data.bin", "-f", "json")
    assert int(shown["content-length"]) == 300_000
    assert demo.object_store.get_container_metadata(c).object_count == 1
    saved = tmp_path / "saved.bin"
    osc("object", "save", c, "data.bin", "--file", str(saved))
    assert saved.read_bytes() == f.read_bytes()
    osc("object", "delete", c, "data.bin")
    osc("container", "delete", c)
    assert c not in _names(demo.object_store.containers())
