"""DeviceMap: one record per GRUB device, looked up by name, UUID, label and type."""

from __future__ import annotations

import pytest
from dirfs import DirFileSystem

from guestboot.devices import Device, DeviceMap
from guestboot.errors import CorruptImage, NotFound
from guestboot.source import ZeroSource
from guestboot.volume.base import Volume

ESP = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"


def _map(tmp_path) -> DeviceMap:
    boot = DirFileSystem(tmp_path, uuid="7D0E5B1A-93C4-4F6E-8A27-C1D2E3F4A5B6", label="boot")
    root = DirFileSystem(tmp_path, uuid="2f1c7a9e-4b3d-4e21-9c55-0d8e6f7a1b42", label="root")
    devices = DeviceMap()
    devices.add("hd0")
    devices.add("hd0,gpt1", volume=Volume("gpt1", 1, 1 << 20, ZeroSource(1 << 20), type_id=ESP, uuid="AAAA-1"),
                problem=CorruptImage("bad FAT", where="(hd0,gpt1)", offset=0x0B))
    devices.add("hd0,gpt2", volume=Volume("gpt2", 2, 2 << 20, ZeroSource(1 << 20), uuid="bbbb-2"), fs=boot)
    devices.add("hd1,msdos5", volume=Volume("msdos5", 5, 3 << 20, ZeroSource(1 << 20), type_id="0x83"), fs=root)
    devices.add("lvm/vg-root", fs=root)
    return devices


def test_iteration_is_probe_order_and_records_say_why(tmp_path):
    devices = _map(tmp_path)
    assert devices.names() == ["hd0", "hd0,gpt1", "hd0,gpt2", "hd1,msdos5", "lvm/vg-root"]
    first = next(iter(devices))
    assert isinstance(first, Device) and first.fs is None and first.problem == "no recognised file system"
    assert [d.name for d in devices if d.fs is not None] == ["hd0,gpt2", "hd1,msdos5", "lvm/vg-root"]
    assert [name for name, _fs in devices.filesystems()] == ["hd0,gpt2", "hd1,msdos5", "lvm/vg-root"]


@pytest.mark.parametrize(
    "written, canonical",
    [("(hd0,1)", "hd0,gpt1"), ("hd0,gpt2", "hd0,gpt2"), ("hd1,5", "hd1,msdos5"), ("(lvm/vg-root)", "lvm/vg-root"),
     ("hd0,msdos2", None), ("hd2", None), ("hd1,gpt5", None)],
)
def test_names_are_found_the_way_grub_writes_them(tmp_path, written, canonical):
    devices = _map(tmp_path)
    assert devices.canonical(written) == canonical
    found = devices.get(written)
    assert (found.name if found else None) == canonical


def test_filesystem_raises_the_reason(tmp_path):
    devices = _map(tmp_path)
    with pytest.raises(CorruptImage, match="bad FAT"):
        devices.filesystem("hd0,1")
    with pytest.raises(NotFound, match=r"device \(hd0\): no recognised file system"):
        devices.filesystem("hd0")
    with pytest.raises(NotFound, match=r"no device \(hd7\); the image has: hd0, hd0,gpt1"):
        devices.filesystem("hd7")
    assert devices.filesystem("(hd0,2)").label == "boot"


def test_lookups_by_uuid_label_partition_and_type(tmp_path):
    devices = _map(tmp_path)
    assert [d.name for d in devices.by_fs_uuid("7d0e5b1a-93c4-4f6e-8a27-c1d2e3f4a5b6")] == ["hd0,gpt2"]
    assert [d.name for d in devices.by_fs_uuid("2F1C7A9E-4B3D-4E21-9C55-0D8E6F7A1B42")] == ["hd1,msdos5", "lvm/vg-root"]
    assert devices.by_fs_uuid("") == []
    assert [d.name for d in devices.by_label("boot")] == ["hd0,gpt2"]
    assert devices.by_label("BOOT") == []
    assert [d.name for d in devices.by_part_uuid("BBBB-2")] == ["hd0,gpt2"]
    assert [d.name for d in devices.by_type(ESP.upper())] == ["hd0,gpt1"]
    assert [d.name for d in devices.by_type("0x83")] == ["hd1,msdos5"]
    assert devices.by_type("0x0c") == []


def test_of_wraps_file_systems_for_tests(tmp_path):
    fs = DirFileSystem(tmp_path)
    devices = DeviceMap.of({"hd0": None, "hd0,msdos1": fs}, {"hd0": "partitioned disk"})
    assert [(d.name, d.fs, d.problem) for d in devices] == [
        ("hd0", None, "partitioned disk"), ("hd0,msdos1", fs, None)]
    with pytest.raises(ValueError, match="added twice"):
        devices.add("hd0,msdos1", fs=fs)
