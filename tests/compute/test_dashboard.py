"""The Key Pairs panel (section Compute) and the admin Flavors panel; the admin console."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.apps import apps
from django.contrib import admin
from django.db import connection

from apps.compute import services
from apps.compute.models import Flavor, KeyPair
from tests.dashboard.conftest import signed_in

pytestmark = pytest.mark.django_db


def test_keypairs_panel_import_generate_delete(cloud):
    demo = signed_in("demo", "demo-pw")
    page = demo.get("/dashboard/compute/keypairs/")
    assert page.status_code == 200 and 'href="/dashboard/compute/keypairs/"' in page.content.decode()
    public = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    imported = demo.post("/dashboard/compute/keypairs/", {"name": "imp", "public_key": public})
    assert imported.status_code == 302
    generated = demo.post("/dashboard/compute/keypairs/", {"name": "gen", "public_key": ""})
    html = generated.content.decode()
    assert generated.status_code == 200 and "BEGIN RSA PRIVATE KEY" in html
    assert generated["Cache-Control"] == "no-store"
    assert 'download="gen.pem"' in html and 'href="data:application/x-pem-file;charset=utf-8,-----BEGIN' in html
    assert "BEGIN RSA PRIVATE KEY" not in demo.get("/dashboard/compute/keypairs/").content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT public_key FROM compute_keypair")
        assert all("PRIVATE" not in row[0] for row in cursor.fetchall())
    bad = demo.post("/dashboard/compute/keypairs/", {"name": "bad", "public_key": "nonsense"})
    assert bad.status_code == 400 and "Keypair data is invalid" in bad.content.decode()
    assert demo.post("/dashboard/compute/keypairs/imp/delete").status_code == 302
    assert set(KeyPair.objects.values_list("name", flat=True)) == {"gen"}


def test_flavors_panel_is_admin_only(cloud):
    demo = signed_in("demo", "demo-pw")
    assert demo.get("/dashboard/compute/flavors/").status_code == 403
    assert 'href="/dashboard/compute/flavors/"' not in demo.get("/dashboard/compute/keypairs/").content.decode()
    adm = signed_in("admin", "admin-pw")
    page = adm.get("/dashboard/compute/flavors/")
    assert page.status_code == 200 and "m1.tiny" in page.content.decode()
    created = adm.post("/dashboard/compute/flavors/", {"name": "dash", "vcpus": 2, "ram": 256, "disk": 2,
                                                        "ephemeral": 0, "swap": 0})
    assert created.status_code == 302
    assert Flavor.objects.get(name="dash").is_public is False  # an unchecked box is private
    duplicate = adm.post("/dashboard/compute/flavors/", {"name": "dash", "vcpus": 1, "ram": 1, "disk": 1,
                                                          "ephemeral": 0, "swap": 0, "is_public": "on"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    flavorid = Flavor.objects.get(name="dash").flavorid
    assert demo.post(f"/dashboard/compute/flavors/{flavorid}/delete").status_code == 403
    assert adm.post(f"/dashboard/compute/flavors/{flavorid}/delete").status_code == 302
    assert not Flavor.objects.filter(name="dash").exists()


def test_compute_models_are_registered_and_browsable(client, cloud):
    actor = cloud.admin_actor
    services.keypair_create(actor=actor, name="console")
    services.server_group_create(actor=actor, name="console-g", policy="affinity")
    services.flavor_extra_specs_set(actor=actor, flavor_id="1", specs={"hw:cpu_policy": "shared"})
    inline = {i.model for m in admin.site._registry.values() for i in m.inlines}
    browsable = [m for m in apps.get_app_config("compute").get_models() if admin.site.is_registered(m)]
    for model in apps.get_app_config("compute").get_models():
        assert admin.site.is_registered(model) or model in inline, model  # action events: inline in their action
    assert client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pw"}).status_code == 302
    for model in browsable:
        url = f"/admin/compute/{model._meta.model_name}/?q=con"
        assert client.get(url).status_code == 200, url
    assert "m1.tiny" in client.get("/admin/compute/flavor/?is_public__exact=1").content.decode()
    assert client.get(f"/admin/compute/flavor/{Flavor.objects.get(name='m1.tiny').pk}/change/").status_code == 200
