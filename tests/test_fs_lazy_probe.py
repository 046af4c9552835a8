"""Start-up: every volume is offered to each driver in fs.PROBES, so a driver with a magic
number checks it before it imports its modules (a BIOS boot partition, an ESP or a swap
volume must not load the XFS, btrfs, squashfs, ISO 9660 and exFAT drivers). The magic
each package checks on its own must be the one its layout declares."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from guestboot.fs import btrfs, exfat, iso9660, squashfs, xfs
from guestboot.fs.btrfs import layout as btrfs_layout
from guestboot.fs.exfat import layout as exfat_layout
from guestboot.fs.iso9660 import descriptors as iso_descriptors
from guestboot.fs.squashfs import layout as squashfs_layout
from guestboot.fs.xfs import layout as xfs_layout


def test_each_package_checks_the_magic_its_layout_declares():
    assert xfs._MAGIC == xfs_layout.SB_MAGIC.to_bytes(4, "big")
    assert btrfs._MAGIC == btrfs_layout.SUPER_MAGIC
    # struct btrfs_super_block: csum[32], fsid[16], bytenr, flags, then the magic at 0x40
    assert btrfs._MAGIC_OFFSET == btrfs_layout.SUPER_OFFSETS[0] + 0x40
    assert squashfs._MAGIC == squashfs_layout.MAGIC_BYTES
    assert exfat._FS_NAME == exfat_layout.FS_NAME
    assert iso9660._STANDARD_ID == iso_descriptors.STANDARD_ID
    assert iso9660._DESCRIPTOR_ID_OFFSET == iso_descriptors.SYSTEM_AREA_BLOCKS * iso_descriptors.BLOCK_SIZE + 1


PROBE_ZEROS = """
import json, sys
from guestboot.fs import probe
from guestboot.source.base import BytesSource
assert probe(BytesSource(bytes(1 << 20))) is None
print(json.dumps(sorted(m for m in sys.modules if m.startswith("guestboot.fs."))))
"""


def test_a_volume_no_driver_claims_loads_only_the_drivers_without_magic():
    done = subprocess.run([sys.executable, "-c", PROBE_ZEROS], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    loaded = set(json.loads(done.stdout))
    for driver in ("xfs", "btrfs", "squashfs", "iso9660", "exfat"):
        assert {m for m in loaded if m.startswith(f"guestboot.fs.{driver}.")} == set(), (driver, sorted(loaded))
    # FAT has no magic number: its boot-sector check is the probe
    assert "guestboot.fs.fat.bootsector" in loaded
