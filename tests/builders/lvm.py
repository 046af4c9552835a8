"""LVM2 volume groups made by the real lvm2 tools on loop devices, activation off.

This machine has no device-mapper: pvcreate/vgcreate/lvcreate still write real labels and
metadata with ``global{activation=0}`` (see TOOL-NOTES), and lvs/pvs then say where each
LV's extents are (``seg_pe_ranges``, ``stripes``, ``stripe_size``, ``pe_start``), so a
file-system image is written into an LV at the offsets lvm2 chose. A striped LV is
written chunk by chunk in the order dm-stripe uses (chunk i on stripe i mod n); GRUB's
own LVM driver (grub-fstest) reading the result back is the independent check of that.

Only the test's own loop devices are scanned (a ``global_filter`` naming them), so VGs of
other processes on this machine are never seen or touched.

Debian packages: lvm2, util-linux (losetup).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

SECTOR = 512


class LvmUnavailable(RuntimeError):
    """lvm2 or loop devices are not available here."""


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def lvm_available() -> str | None:
    """None when lvm2 and loop devices can be used, else why not."""
    for tool in ("pvcreate", "losetup"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install lvm2 util-linux)"
    if not Path("/dev/loop-control").exists():
        return "no loop devices (/dev/loop-control)"
    return None


@contextlib.contextmanager
def loop_devices(paths: Sequence[Path]) -> Iterator[list[str]]:
    """Each image attached to a loop device (detached again afterwards)."""
    attached: list[str] = []
    try:
        for path in paths:
            attached.append(_run(["losetup", "-f", "--show", str(path)]).strip())
        yield attached
    finally:
        for device in attached:
            subprocess.run(["losetup", "-d", device], capture_output=True, check=False)


class Lvm:
    """lvm2 commands restricted to ``devices`` with activation off."""

    def __init__(self, devices: Sequence[str]):
        accept = ", ".join(f'"a|^{re.escape(d)}$|"' for d in devices)
        self.config = (
            "global{activation=0} "
            f"devices{{obtain_device_list_from_udev=0 scan_lvs=0 global_filter=[{accept}, \"r|.*|\"]}}"
        )

    def __call__(self, *argv: str) -> str:
        return _run([argv[0], "--config", self.config, *argv[1:]])

    def report(self, command: str, fields: str, *argv: str) -> list[dict]:
        out = self(command, "--reportformat", "json", "--units", "b", "--nosuffix", "-o", fields, *argv)
        report = json.loads(out)["report"][0]
        return next(iter(report.values()))


@dataclass
class Segment:
    """Where lvm2 put one segment of an LV: ``ranges`` are (device, first PE, last PE)."""

    start_pe: int
    stripes: int
    stripe_size: int
    ranges: list[tuple[str, int, int]]


def lv_segments(lvm: Lvm, vg: str) -> dict[str, list[Segment]]:
    """Every LV's segments, as lvs reports them."""
    out: dict[str, list[Segment]] = {}
    for row in lvm.report("lvs", "lv_name,seg_start_pe,seg_pe_ranges,stripes,stripe_size", "-a", vg):
        ranges = []
        for piece in row["seg_pe_ranges"].split():
            device, _, span = piece.rpartition(":")
            first, _, last = span.partition("-")
            ranges.append((device, int(first), int(last)))
        out.setdefault(row["lv_name"], []).append(
            Segment(int(row["seg_start_pe"]), int(row["stripes"]), int(row["stripe_size"]), ranges))
    for segments in out.values():
        segments.sort(key=lambda s: s.start_pe)
    return out


def pe_starts(lvm: Lvm) -> dict[str, int]:
    return {row["pv_name"]: int(row["pe_start"]) for row in lvm.report("pvs", "pv_name,pe_start")}


def extent_bytes(lvm: Lvm, vg: str) -> int:
    return int(lvm.report("vgs", "vg_extent_size", vg)[0]["vg_extent_size"])


def write_into_lv(data_path: Path, segments: list[Segment], extent: int, starts: dict[str, int],
                  where: dict[str, tuple[Path, int]]) -> None:
    """Write the file ``data_path`` into an LV at the places lvm2 chose. ``where`` maps a
    PV's device to (image file, byte offset of the PV in it)."""
    data = data_path.read_bytes()
    position = 0
    for segment in segments:
        per_stripe = (segment.ranges[0][2] - segment.ranges[0][1] + 1) * extent
        if segment.stripes == 1:
            chunk, stripes = per_stripe, 1
        else:
            chunk, stripes = segment.stripe_size, segment.stripes
        total = per_stripe * len(segment.ranges)
        for offset in range(0, total, chunk):
            index = offset // chunk
            device, first, _last = segment.ranges[index % stripes]
            image, pv_offset = where[device]
            at = pv_offset + starts[device] + first * extent + (index // stripes) * chunk
            piece = data[position + offset : position + offset + chunk]
            if piece:
                with open(image, "r+b") as f:
                    f.seek(at)
                    f.write(piece)
        position += total
    if len(data) > position:
        raise ValueError(f"{data_path} ({len(data)} bytes) does not fit the LV ({position} bytes)")
