"""CVE-2007-4993: pygrub once ran the ``default`` value of a guest's grub.conf as Python.
The payloads below are Python that would create a file in the working directory (the
arena, snapshotted around the run) and in the host's /tmp, and read /etc/passwd into the
output; each is put in every field of every config language that takes a value. The run
must treat them as text: a typed error or the guest's kernel, nothing created."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hostile import configs
from hostile.configs import GUEST_FILES, GUEST_KERNEL
from hostile.harness import expect_error, expect_safe, extract, pygrub

MARK = f"/tmp/guestboot-hostile-pwned-{uuid.uuid4().hex}"
PAYLOADS = {
    "os-system": f"\"+str(0*__import__('os').system('touch PWNED {MARK}'))+\"",
    "exec-open": f"0;exec(\"open('PWNED','w');open('{MARK}','w')\")",
    "eval-passwd": "int(open('/etc/passwd').read(1) or 0)",
}


def _field_trees(payload: str) -> dict[str, dict[str, bytes]]:
    p = payload.encode()
    kernel = b"/boot/vmlinuz"
    return {
        "legacy-default": {"/boot/grub/menu.lst": b"default " + p + b"\ntitle t\n kernel /boot/vmlinuz\n"},
        "legacy-fallback-timeout": {"/boot/grub/menu.lst": b"default 0\nfallback " + p + b"\ntimeout " + p
                                    + b"\ntitle t\n kernel /boot/vmlinuz\n"},
        "legacy-title-args": configs.entry("legacy", title=p, args=p),
        "grub2-default": {"/boot/grub/grub.cfg": b"set default=\"" + p.replace(b'"', b'\\"') + b"\"\n"
                          b"menuentry t {\n linux " + kernel + b"\n}\n"},
        "grub2-title-args": configs.entry("grub2", title=p.replace(b"'", b""), args=b"'" + p.replace(b"'", b"") + b"'"),
        "syslinux-default": {"/boot/extlinux/extlinux.conf": b"DEFAULT " + p + b"\nTIMEOUT " + p
                             + b"\nLABEL t\n KERNEL /boot/vmlinuz\n"},
    }


CASES = [(f"{field}-{name}", name, field) for name in PAYLOADS for field in _field_trees("")]


@pytest.mark.parametrize("case,payload,field", CASES, ids=[c[0] for c in CASES])
def test_payload_is_text(images, arena, case, payload, field):
    image = images.fs(f"cve-{case}", "ext4", {**GUEST_FILES, **_field_trees(PAYLOADS[payload])[field]})
    result = extract(arena, image)
    if result.rc != 0:
        expect_error(result, {6, 7})
    expect_safe(result, GUEST_KERNEL)
    listing = pygrub(arena, "-l", str(image))  # pygrub's own front end, its list mode
    assert listing.rc in (0, 6, 7), listing
    assert not Path(MARK).exists() and not (arena.root / "PWNED").exists()
