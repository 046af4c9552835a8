"""Damaged and hostile partition tables: always a clean result with warnings, or a typed
guestboot error, and never a hang (each case is bounded to 5 s).

The damage is done to real sfdisk/sgdisk images where it can be; only the attack shapes no
tool writes (EBR loops, overlong chains, oversized GPT arrays) are hand-made bytes.
"""

from __future__ import annotations

import random
import struct
import zlib

import pytest

from builders.disk import sfdisk_image, sgdisk_image
from guestboot.errors import CorruptImage, GuestbootError, LimitExceeded
from guestboot.limits import LIMITS
from guestboot.source import BytesSource
from guestboot.volume import scan, scan_with_warnings

MiB = 1 << 20
SECTOR = 512
pytestmark = pytest.mark.timeout(5)

# UEFI 5.3.2 Table 5-5, field indices used below.
GPT_HEADER = struct.Struct("<8sIII4xQQQQ16sQIII")
HEADER_SIZE, HEADER_CRC, MY_LBA = 2, 3, 4
ENTRY_LBA, ENTRY_COUNT, ENTRY_SIZE, ARRAY_CRC = 9, 10, 11, 12
MBR_RECORD = struct.Struct("<B3sB3sII")


# --- real images, damaged ----------------------------------------------------------------


@pytest.fixture(scope="session")
def gpt_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("cgpt") / "small.img"
    sgdisk_image(path, 4 * MiB, ["-n1:2048:+1M", "-c1:one", "-n2:0:+1M", "-c2:two", "-n3:0:0", "-c3:three"])
    return path.read_bytes()


@pytest.fixture(scope="session")
def mbr_bytes(tmp_path_factory) -> bytes:
    """Primary 1, extended 2, logicals 5, 6, 7 (4 MiB disk, 512-byte sectors)."""
    path = tmp_path_factory.mktemp("cmbr") / "small.img"
    name = path.name
    sfdisk_image(
        path,
        4 * MiB,
        f"label: dos\n{name}1 : start=64, size=512, type=83\n{name}2 : size=4096, type=5\n"
        f"{name}5 : size=512, type=83\n{name}6 : size=512, type=83\n{name}7 : size=512, type=83\n",
    )
    return path.read_bytes()


def disk(data: bytes | bytearray) -> BytesSource:
    return BytesSource(bytes(data), name="disk")


def header_fields(data: bytes, lba: int) -> list:
    return list(GPT_HEADER.unpack_from(data, lba * SECTOR))


def write_header(data: bytearray, lba: int, fields: list, crc_bytes: int = GPT_HEADER.size) -> None:
    """Store a header at ``lba`` with a correct CRC32 (over ``crc_bytes`` bytes)."""
    fields = list(fields)
    fields[HEADER_CRC] = 0
    GPT_HEADER.pack_into(data, lba * SECTOR, *fields)
    fields[HEADER_CRC] = zlib.crc32(bytes(data[lba * SECTOR : lba * SECTOR + crc_bytes]))
    GPT_HEADER.pack_into(data, lba * SECTOR, *fields)


def both_headers(data: bytes) -> tuple[int, int]:
    return 1, len(data) // SECTOR - 1


def set_in_headers(data: bytes, which: tuple[int, ...], index: int, value) -> bytearray:
    out = bytearray(data)
    for lba in which:
        fields = header_fields(out, lba)
        fields[index] = value
        write_header(out, lba, fields)
    return out


def test_gpt_sanity_of_the_fixture(gpt_bytes):
    volumes, warnings = scan_with_warnings(disk(gpt_bytes))
    assert [v.grub_name for v in volumes] == ["gpt1", "gpt2", "gpt3"] and warnings == []


@pytest.mark.parametrize(
    "index, value, error",
    [
        (ENTRY_COUNT, 0xFFFFFFFF, LimitExceeded),
        (ENTRY_COUNT, LIMITS.max_gpt_entries + 1, LimitExceeded),
        (ENTRY_SIZE, 100, CorruptImage),
        (ENTRY_SIZE, 384, CorruptImage),  # 128 * 3 is not 128 * 2^n
        (ENTRY_SIZE, 0, CorruptImage),
        (ENTRY_SIZE, 1 << 31, LimitExceeded),
        (ENTRY_LBA, 1 << 60, CorruptImage),  # entry array far past the end
        (ENTRY_LBA, 8000, CorruptImage),  # array starts inside, ends past the end
        (ENTRY_LBA, 0, CorruptImage),
        (MY_LBA, 5, CorruptImage),
        (HEADER_SIZE, 20, CorruptImage),
        (HEADER_SIZE, 0xFFFFFFFF, CorruptImage),
    ],
)
def test_gpt_bad_header_field_in_both_headers_is_typed_error(gpt_bytes, index, value, error):
    with pytest.raises(error) as caught:
        scan(disk(set_in_headers(gpt_bytes, both_headers(gpt_bytes), index, value)))
    assert caught.value.offset is not None and "backup" in caught.value.message


@pytest.mark.parametrize("index, value", [(ENTRY_COUNT, 0xFFFFFFFF), (ENTRY_SIZE, 100), (ENTRY_LBA, 1 << 60)])
def test_gpt_bad_primary_header_field_falls_back_to_backup(gpt_bytes, index, value):
    volumes, warnings = scan_with_warnings(disk(set_in_headers(gpt_bytes, (1,), index, value)))
    assert [v.label for v in volumes] == ["one", "two", "three"]
    assert len(warnings) == 1 and "backup" in warnings[0]


def test_gpt_bad_header_crcs_are_corrupt(gpt_bytes):
    data = bytearray(gpt_bytes)
    for lba in both_headers(gpt_bytes):
        data[lba * SECTOR + 16] ^= 0xFF  # the stored CRC32
    with pytest.raises(CorruptImage, match="header CRC32"):
        scan(disk(data))


def test_gpt_bad_entry_array_crcs_are_corrupt(gpt_bytes):
    data = bytearray(gpt_bytes)
    for lba in both_headers(gpt_bytes):
        entries = header_fields(data, lba)[ENTRY_LBA]
        data[entries * SECTOR + 56] ^= 0x01  # a name byte of entry 1
    with pytest.raises(CorruptImage, match="entry array CRC32"):
        scan(disk(data))


def test_gpt_protective_mbr_without_any_header_is_corrupt(gpt_bytes):
    data = bytearray(gpt_bytes)
    for lba in both_headers(gpt_bytes):
        data[lba * SECTOR : lba * SECTOR + 8] = b"NOT PART"
    with pytest.raises(CorruptImage, match="0xee"):
        scan(disk(data))


def test_gpt_entry_ending_before_it_starts_is_left_out(gpt_bytes):
    data = bytearray(gpt_bytes)
    fields = header_fields(data, 1)
    entry = fields[ENTRY_LBA] * SECTOR + 128  # entry 2
    struct.pack_into("<QQ", data, entry + 32, 5000, 4000)
    array = bytes(data[fields[ENTRY_LBA] * SECTOR :][: fields[ENTRY_COUNT] * fields[ENTRY_SIZE]])
    fields[ARRAY_CRC] = zlib.crc32(array)
    write_header(data, 1, fields)
    volumes, warnings = scan_with_warnings(disk(data))
    assert [v.grub_name for v in volumes] == ["gpt1", "gpt3"]
    assert len(warnings) == 1 and "gpt2" in warnings[0] and "before it starts" in warnings[0]


def test_gpt_truncated_disk_clips_and_skips_partitions(gpt_bytes):
    """Cut inside partition 2: 1 stays, 2 is clipped, 3 (past the end) is left out; the
    backup header is gone, which does not matter while the primary is good."""
    volumes = scan(disk(gpt_bytes))
    cut = volumes[1].start + 1000
    result, warnings = scan_with_warnings(disk(gpt_bytes[:cut]))
    assert [(v.grub_name, v.source.size) for v in result] == [
        ("gpt1", volumes[0].source.size),
        ("gpt2", 1000),
    ]
    assert len(warnings) == 2
    assert "clipped" in warnings[0] and "gpt2" in warnings[0]
    assert "past the end" in warnings[1] and "gpt3" in warnings[1]


def test_gpt_disk_cut_inside_the_entry_array(gpt_bytes):
    with pytest.raises(CorruptImage):
        scan(disk(gpt_bytes[: 3 * SECTOR]))


def test_gpt_entries_beyond_max_partitions_are_ignored_with_a_warning():
    """A hand-made GPT whose 1024 entries are all used, each one sector long."""
    count = LIMITS.max_gpt_entries
    entries_lba, first = 2, 2 + count * 128 // SECTOR
    size = (first + count + 64) * SECTOR
    data = bytearray(size)
    MBR_RECORD.pack_into(data, 446, 0, b"\0" * 3, 0xEE, b"\0" * 3, 1, size // SECTOR - 1)
    data[510:512] = b"\x55\xaa"
    for i in range(count):
        entry = entries_lba * SECTOR + 128 * i
        struct.pack_into("<16s16sQQQ", data, entry, b"\x01" * 16, bytes(16), first + i, first + i, 0)
    array_crc = zlib.crc32(bytes(data[entries_lba * SECTOR : first * SECTOR]))
    last = size // SECTOR - 1
    fields = [b"EFI PART", 0x10000, 92, 0, 1, last, first, last - 33, bytes(16), entries_lba, count, 128, array_crc]
    write_header(data, 1, fields)
    volumes, warnings = scan_with_warnings(disk(data))
    assert len(volumes) == LIMITS.max_partitions
    assert volumes[-1].grub_name == f"gpt{LIMITS.max_partitions}"
    assert len(warnings) == 1 and "max_partitions" in warnings[0]


# --- MBR ---------------------------------------------------------------------------------


def ebr_offsets(data: bytes) -> list[int]:
    """Byte offsets of the EBRs of the fixture, following the links as sfdisk wrote them."""
    base = MBR_RECORD.unpack_from(data, 446 + 16)[4] * SECTOR  # record 2 is the extended one
    offsets, link = [], base
    while True:
        offsets.append(link)
        nxt = MBR_RECORD.unpack_from(data, link + 446 + 16)
        if nxt[2] == 0:
            return offsets
        link = base + nxt[4] * SECTOR


def test_mbr_sanity_of_the_fixture(mbr_bytes):
    volumes, warnings = scan_with_warnings(disk(mbr_bytes))
    assert [v.grub_name for v in volumes] == ["msdos1", "msdos5", "msdos6", "msdos7"] and warnings == []
    assert len(ebr_offsets(mbr_bytes)) == 3


@pytest.mark.parametrize("target", [0, 1])
def test_mbr_ebr_loop_ends_the_chain_with_a_warning(mbr_bytes, target):
    """The third EBR links back to the first (or second): the logicals already found stay."""
    data = bytearray(mbr_bytes)
    ebrs = ebr_offsets(mbr_bytes)
    base = ebrs[0]
    struct.pack_into("<B", data, ebrs[2] + 446 + 16 + 4, 0x05)
    struct.pack_into("<II", data, ebrs[2] + 446 + 16 + 8, (ebrs[target] - base) // SECTOR, 1024)
    volumes, warnings = scan_with_warnings(disk(data))
    assert [v.grub_name for v in volumes] == ["msdos1", "msdos5", "msdos6", "msdos7"]
    assert len(warnings) == 1 and "loop" in warnings[0]


def test_mbr_ebr_linking_to_itself(mbr_bytes):
    data = bytearray(mbr_bytes)
    first = ebr_offsets(mbr_bytes)[0]
    struct.pack_into("<II", data, first + 446 + 16 + 8, 0, 1024)
    volumes, warnings = scan_with_warnings(disk(data))
    assert [v.grub_name for v in volumes] == ["msdos1", "msdos5"]
    assert "loop" in warnings[0]


def test_mbr_ebr_link_past_the_end(mbr_bytes):
    data = bytearray(mbr_bytes)
    first = ebr_offsets(mbr_bytes)[0]
    struct.pack_into("<I", data, first + 446 + 16 + 8, 0xFFFFFFFF)
    volumes, warnings = scan_with_warnings(disk(data))
    assert [v.grub_name for v in volumes] == ["msdos1", "msdos5"]
    assert "past the end" in warnings[0]


def test_mbr_ebr_without_signature(mbr_bytes):
    data = bytearray(mbr_bytes)
    second = ebr_offsets(mbr_bytes)[1]
    data[second + 510 : second + 512] = b"\0\0"
    volumes, warnings = scan_with_warnings(disk(data))
    assert [v.grub_name for v in volumes] == ["msdos1", "msdos5"]
    assert "0x55AA" in warnings[0]


def hand_made_chain(links: int) -> bytes:
    """An MBR whose extended partition holds ``links`` EBRs, each with one logical."""
    size = (2 + 2 * links + 8) * SECTOR
    data = bytearray(size)
    MBR_RECORD.pack_into(data, 446, 0, bytes(3), 0x0F, bytes(3), 1, 2 * links + 4)
    data[510:512] = b"\x55\xaa"
    for i in range(links):
        ebr = (1 + 2 * i) * SECTOR
        MBR_RECORD.pack_into(data, ebr + 446, 0, bytes(3), 0x83, bytes(3), 1, 1)
        if i + 1 < links:
            MBR_RECORD.pack_into(data, ebr + 446 + 16, 0, bytes(3), 0x05, bytes(3), 2 * (i + 1), 2)
        data[ebr + 510 : ebr + 512] = b"\x55\xaa"
    return bytes(data)


def test_mbr_chain_at_the_limit_is_read():
    volumes = scan(disk(hand_made_chain(LIMITS.max_logical_partitions)))
    assert len(volumes) == LIMITS.max_logical_partitions
    assert volumes[-1].grub_name == f"msdos{4 + LIMITS.max_logical_partitions}"


def test_mbr_chain_over_the_limit_is_limit_exceeded():
    with pytest.raises(LimitExceeded, match="max_logical_partitions"):
        scan(disk(hand_made_chain(LIMITS.max_logical_partitions + 1)))


def test_mbr_partition_past_the_end_is_left_out_and_overlong_one_clipped(mbr_bytes):
    data = bytearray(mbr_bytes)
    MBR_RECORD.pack_into(data, 446 + 32, 0, bytes(3), 0x83, bytes(3), 0x10000000, 100)  # slot 3
    MBR_RECORD.pack_into(data, 446 + 48, 0, bytes(3), 0x0C, bytes(3), 7000, 0xFFFFFFFF)  # slot 4
    volumes, warnings = scan_with_warnings(disk(data))
    assert [v.grub_name for v in volumes] == ["msdos1", "msdos4", "msdos5", "msdos6", "msdos7"]
    assert volumes[1].source.size == len(data) - 7000 * SECTOR
    assert len(warnings) == 2 and "msdos3" in warnings[0] and "msdos4" in warnings[1]


def test_mbr_truncated_disk(mbr_bytes):
    """Cut after the first logical: the chain's next EBR is gone, a clean warning."""
    ebrs = ebr_offsets(mbr_bytes)
    volumes, warnings = scan_with_warnings(disk(mbr_bytes[: ebrs[1]]))
    assert [v.grub_name for v in volumes] == ["msdos1", "msdos5"]
    assert any("extended boot record" in w for w in warnings)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.__setitem__(slice(510, 512), b"\0\0"),  # no signature
        lambda d: d.__setitem__(446, 0x01),  # boot indicator neither 0x00 nor 0x80
    ],
)
def test_mbr_that_is_not_a_table_gives_the_whole_disk(mbr_bytes, damage):
    data = bytearray(mbr_bytes)
    damage(data)
    volumes, warnings = scan_with_warnings(disk(data))
    assert [(v.grub_name, v.source.size) for v in volumes] == [("", len(data))] and warnings == []


@pytest.mark.parametrize("size", [0, 1, 511])
def test_tiny_disks_are_whole_disk_volumes(size):
    assert [v.grub_name for v in scan(disk(bytes(size)))] == [""]


def test_all_partitions_unusable_falls_back_to_the_whole_disk():
    data = bytearray(4 * SECTOR)
    MBR_RECORD.pack_into(data, 446, 0, bytes(3), 0x83, bytes(3), 100, 10)  # starts past the end
    data[510:512] = b"\x55\xaa"
    volumes, warnings = scan_with_warnings(disk(data))
    assert [v.grub_name for v in volumes] == [""]
    assert len(warnings) == 2


# --- random damage -------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["gpt", "mbr"])
def test_random_damage_gives_volumes_or_a_typed_error(request, which):
    """Flip bytes in the table sectors of real images: never anything but a result or a
    GuestbootError, and every volume lies inside the disk."""
    original = request.getfixturevalue(f"{which}_bytes")
    hot = [0, SECTOR, 2 * SECTOR, len(original) - SECTOR] + (ebr_offsets(original) if which == "mbr" else [])
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            base = rng.choice(hot)
            data[base + rng.randrange(SECTOR)] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        try:
            volumes = scan(disk(data))
        except GuestbootError:
            outcomes["error"] += 1
            continue
        outcomes["ok"] += 1
        for volume in volumes:
            assert 0 <= volume.start and volume.start + volume.source.size <= len(data)
    assert outcomes["ok"] > 0
