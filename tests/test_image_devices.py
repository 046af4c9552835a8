"""The image stage's device records: every device keeps what its table says (type,
label, UUID, flags, start, size, disk), compared with sfdisk's reading of a disk made by
sgdisk/sfdisk; the partition types BLS discovery needs are found by type."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders.disk import mke2fs_at, sfdisk_image, sgdisk_image, table_of

from guestboot.image import open_image
from guestboot.volume.base import ESP_TYPE, MBR_ESP_TYPE, XBOOTLDR_TYPE

MiB = 1 << 20


@pytest.fixture(scope="session")
def bls_disk(tmp_path_factory) -> Path:
    """GPT: 1 ESP, 2 XBOOTLDR, 3 Linux root (legacy-BIOS-bootable) holding ext4."""
    path = tmp_path_factory.mktemp("bls") / "bls.img"
    sgdisk_image(path, 40 * MiB, [
        "-n1:2048:+4M", "-t1:ef00", "-c1:EFI System",
        "-n2:0:+8M", "-t2:ea00", "-c2:XBOOTLDR",
        "-n3:0:0", "-t3:8304", "-c3:root", "-A3:set:2",
    ])  # fmt: skip
    _, parts = table_of(path)
    mke2fs_at(path, parts[2].start, parts[2].size, "root")
    return path


def _open(path: Path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    return open_image(fd, path.name)


def test_gpt_records_carry_the_table_metadata(bls_disk):
    _, parts = table_of(bls_disk)
    devices = _open(bls_disk).devices
    records = [d for d in devices if d.volume is not None and d.volume.number]
    assert [d.name for d in records] == ["hd0,gpt1", "hd0,gpt2", "hd0,gpt3"]
    for device, part in zip(records, parts):
        v = device.volume
        assert (v.disk, v.device, v.start, v.size) == ("hd0", device.name, part.start, part.size)
        assert (v.type_id, v.uuid, v.label) == (part.type.lower(), part.uuid.lower(), part.name)
    assert records[2].volume.bootable and records[2].volume.attributes == 1 << 2
    assert records[2].fs.label == "root"
    disk = devices.get("hd0")
    assert disk.volume.device == "hd0" and disk.volume.size == os.path.getsize(bls_disk)


def test_esp_and_xbootldr_are_found_by_type(bls_disk):
    devices = _open(bls_disk).devices
    assert [d.name for d in devices.by_type(ESP_TYPE)] == ["hd0,gpt1"]
    assert [d.name for d in devices.by_type(XBOOTLDR_TYPE.upper())] == ["hd0,gpt2"]
    _, parts = table_of(bls_disk)
    assert [d.name for d in devices.by_part_uuid(parts[2].uuid)] == ["hd0,gpt3"]
    assert [d.name for d in devices.by_fs_uuid(devices.filesystem("hd0,gpt3").uuid)] == ["hd0,gpt3"]


def test_mbr_records_carry_type_flag_and_linux_partuuid(tmp_path):
    path = sfdisk_image(tmp_path / "mbr.img", 16 * MiB,
                        "label: dos\nlabel-id: 0x1234abcd\n,4M,ef\n,4M,83,*\n,,5\n,2M,83\n")
    _, parts = table_of(path)
    devices = _open(path).devices
    assert devices.names() == ["hd0", "hd0,msdos1", "hd0,msdos2", "hd0,msdos5"]
    for name, part in zip(["hd0,msdos1", "hd0,msdos2"], parts):
        v = devices.get(name).volume
        assert (v.start, v.size, int(v.type_id, 16), v.bootable) == (part.start, part.size, int(part.type, 16),
                                                                     part.bootable)
    # Linux's PARTUUID for MBR: the disk signature and the partition number
    assert devices.get("hd0,msdos5").volume.uuid == "1234abcd-05"
    assert [d.name for d in devices.by_part_uuid("1234ABCD-02")] == ["hd0,msdos2"]
    assert [d.name for d in devices.by_type(MBR_ESP_TYPE)] == ["hd0,msdos1"]
    assert [d.name for d in devices.by_type("0x83")] == ["hd0,msdos2", "hd0,msdos5"]
