"""Block storage drivers: volumes as qcow2 files through qemu-img (no Django here)."""
from workers.drivers.storage.file import FileVolumeDriver, StorageError

__all__ = ["FileVolumeDriver", "StorageError"]
