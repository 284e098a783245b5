"""The launch form booting from a new volume, in a real browser on a live cloud with real compute nodes
(libvirt test driver) and a real storage agent: demo makes a key pair inside the form (its private key
offered once as a .pem download), chooses "Image, on a new volume" with its size and delete-on-terminate,
a server group, config drive and a metadata row, and launches. The instance becomes Active live; the API
reports it volume-backed (no image, its root a new 1 GiB volume made from the image, attached) with the
group, config drive, metadata and key; its page lists the boot volume. Deleting it from the list deletes
its volume too (delete-on-terminate). Everything the test made is deleted at the end."""
from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import image_and_network, signed_in

pytestmark = pytest.mark.browser

WAIT = 90_000


def test_launch_form_boots_from_a_new_volume(live_cloud: Any, compute_nodes: list, storage_node: Any,
                                             new_page: Callable[[], Page], tmp_path: Any) -> None:
    tag = secrets.token_hex(3)
    vm, key, group_name = f"bfv-{tag}", f"key-{tag}", f"grp-{tag}"
    conn = live_cloud.sdk(user="demo", project="demo")
    image, network = image_and_network(conn, tag, tmp_path, "10.91.0.0/24")
    group = conn.compute.create_server_group(name=group_name, policy="anti-affinity")
    server = None
    try:
        page = signed_in(new_page(), live_cloud, "demo", live_cloud.demo_password)
        page.goto(f"{live_cloud.url}/dashboard/compute/instances/")
        page.click("#launch-instance")
        page.fill("#id_name", vm)

        # the boot source shows its own fields
        expect(page.locator("#id_volume_size")).to_be_hidden()
        page.select_option("#id_source", "image_volume")
        expect(page.locator("#id_volume_size")).to_be_visible()
        expect(page.locator("#id_volume")).to_be_hidden()
        page.select_option("#id_image", label=f"{image.name} (qcow2)")
        page.fill("#id_volume_size", "1")
        page.check("#id_delete_on_termination")
        page.check('#flavor-table tr[data-flavor="m1.tiny"] input[type="radio"]')
        page.check(f'input[name="networks"][value="{network.id}"]')

        # a key pair made inside the form: the form keeps what was typed, the key is offered once
        page.fill("#id_new_key_name", key)
        page.click("#create-keypair")
        expect(page.locator("#private-key")).to_contain_text(f"Private key of {key}")
        with page.expect_download() as info:
            page.click("#private-key-download")
        assert info.value.suggested_filename == f"{key}.pem"
        pem = tmp_path / "key.pem"
        info.value.save_as(pem)
        assert b"PRIVATE KEY-----" in pem.read_bytes()
        expect(page.locator("#id_name")).to_have_value(vm)
        expect(page.locator("#id_source")).to_have_value("image_volume")
        expect(page.locator("#id_volume_size")).to_have_value("1")
        expect(page.locator("#id_key_name")).to_have_value(key)

        page.select_option("#id_server_group", label=f"{group_name} (anti-affinity)")
        page.check("#id_config_drive")
        page.locator('#metadata-rows input[name="metadata_key"]').last.fill("role")
        page.locator('#metadata-rows input[name="metadata_value"]').last.fill("web")
        page.click("#metadata-add")
        expect(page.locator("#metadata-rows .metadata-row")).to_have_count(2)
        page.locator('#metadata-rows input[name="metadata_key"]').last.fill("tier")
        page.locator('#metadata-rows input[name="metadata_value"]').last.fill("front")
        page.click("#launch-submit")
        expect(page.locator(".alert-success")).to_contain_text(f"Launched 1 instance: {vm}")

        row = page.locator(f'#instances-table tr[data-name="{vm}"]')
        expect(row).to_have_attribute("data-status", "ACTIVE", timeout=WAIT)
        server = conn.compute.find_server(vm)
        server = conn.compute.get_server(server.id)
        assert server.status == "ACTIVE"
        assert not (server.image or {}).get("id")  # volume-backed: no image of its own
        assert server.key_name == key and server.metadata == {"role": "web", "tier": "front"}
        assert str(server.has_config_drive).lower() in ("true", "1")
        assert server.id in conn.compute.get_server_group(group.id).member_ids
        (attached,) = server.attached_volumes
        volume = conn.block_storage.get_volume(attached["id"])
        assert (volume.size, volume.status, str(volume.is_bootable).lower()) == (1, "in-use", "true")
        assert volume.volume_image_metadata.get("image_id") == image.id

        # the instance page lists its boot volume
        row.locator(f"text={vm}").click()
        boot = page.locator(f'#instance-volumes-table tr[data-id="{volume.id}"]')
        expect(boot).to_contain_text("boot")
        expect(boot).to_contain_text("1 GiB")
        expect(boot).to_contain_text("yes")  # deleted with the instance

        # delete it from the list: its volume goes with it
        page.goto(f"{live_cloud.url}/dashboard/compute/instances/")
        page.locator(f'#instances-table tr[data-name="{vm}"] button[data-action="delete"]').click()
        expect(page.locator(".alert-success")).to_contain_text(f"Deletion of instance {vm} requested")
        expect(page.locator(f'#instances-table tr[data-name="{vm}"]')).to_have_count(0, timeout=WAIT)
        conn.compute.wait_for_delete(server, wait=WAIT // 1000)
        server = None
        conn.block_storage.wait_for_delete(volume, wait=WAIT // 1000)
    finally:
        if server is not None:
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, wait=WAIT // 1000)
        for leftover in conn.block_storage.volumes():
            if leftover.volume_image_metadata and leftover.volume_image_metadata.get("image_id") == image.id:
                conn.block_storage.delete_volume(leftover)
                conn.block_storage.wait_for_delete(leftover, wait=WAIT // 1000)
        conn.compute.delete_server_group(group)
        if conn.compute.find_keypair(key) is not None:
            conn.compute.delete_keypair(key)
        conn.network.delete_network(network)
        conn.delete_image(image.id)
