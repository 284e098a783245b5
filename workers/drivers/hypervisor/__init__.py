"""The hypervisor side of a compute node. No Django: plain values in and out.

Modules:
  ``libvirt``      ``LibvirtDriver(uri)`` for every libvirt URI (test driver, qemu); ``DomainSpec``,
                   ``DiskSpec``, ``NicSpec``; Nova power states; lifecycle events (``watch``).
  ``node``         ``test_node_xml(...)``: a test-driver node description (one file, one node).
  ``imagecache``   ``ImageCache(root).fetch(image_id, open_stream, checksum=...)``: once per node.
  ``disk``         qemu-img: ``overlay_create``, ``info``, ``resize``, ``convert``, ``delete``.
  ``layout``       ``InstanceLayout(instances_path, uuid)``: where an instance's files live.

The config drive (``lib.configdrive``: ``build(ConfigDriveSpec, path)``, ISO9660 ``config-2``;
``network_data(ports)``) lives in lib/: the metadata service renders the same content.

Spawning an instance on a node (what ``workers/compute.py`` does with these)::

    layout = InstanceLayout(instances_path, instance_id); layout.create()
    base = cache.fetch(image_id, lambda: store.read(image_id), checksum=md5,
                       os_hash_algo="sha512", os_hash_value=sha512)
    disk.overlay_create(base.path, layout.disk, flavor_root_gb, base_format=image_disk_format)
    configdrive.build(ConfigDriveSpec(..., network_data=configdrive.network_data(ports)), layout.config_drive)
    state = driver.spawn(DomainSpec(uuid=instance_id, vcpus=..., memory_mb=...,
                                    disks=(DiskSpec(layout.disk),), nics=(NicSpec(port_id, mac), ...),
                                    config_drive=layout.config_drive, console_log=layout.console_log,
                                    kernel=..., initrd=..., cmdline=...))   # kernel_id/ramdisk_id images
    # delete: driver.destroy(instance_id); layout.remove()   (both idempotent)
"""
