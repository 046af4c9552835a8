#!/usr/bin/env python3
"""Build the README's sample guest image: a Debian 12 style GPT disk.

    python3 tests/builders/sample_image.py sample.img
    guestboot list sample.img
    guestboot extract sample.img -o out

The image is the one the end-to-end tests boot (tests/builders/guest_images.py): BIOS
boot partition (gpt1), /boot ext4 (gpt2) with Debian's grub.cfg and GRUB_DEFAULT="1>1",
root ext4 (gpt3). Its kernel is a real Debian kernel fetched with `apt-get download`
(the package linux-image-amd64 depends on; cached in ~/.cache/guestboot-tests), or the
file given with --kernel. The initrds are tiny busybox archives that print the command
line they were booted with, so the extracted pair can be booted:

    cmdline=$(guestboot extract sample.img -o out) &&
    qemu-system-x86_64 -nographic -no-reboot -kernel out/kernel -initrd out/initrd \\
        -append "console=ttyS0 $cmdline"

Needs (Debian): gdisk e2fsprogs grub-common busybox-static cpio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a clone

from builders.boot import debian_kernel  # noqa: E402
from builders.guest_images import build_debian12_gpt  # noqa: E402
from builders.initramfs import ToolMissing  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the README's sample guest image (Debian 12, GPT).")
    parser.add_argument("output", type=Path, help="image file to write (must not exist)")
    parser.add_argument("--kernel", type=Path, help="a bzImage to use instead of downloading Debian's")
    args = parser.parse_args(argv)
    if args.output.exists():
        parser.error(f"{args.output} exists; not overwriting it")
    try:
        kernel = args.kernel or debian_kernel()
        # built beside the output, so the final rename keeps the image sparse
        with tempfile.TemporaryDirectory(prefix=".guestboot-sample-", dir=args.output.resolve().parent) as tmp:
            image = build_debian12_gpt(Path(tmp), kernel)
            image.path.rename(args.output)
    except ToolMissing as err:
        print(f"sample_image: {err}", file=sys.stderr)
        return 1
    print(f"{args.output}: {image.name}, default entry {image.default.path!r}: {image.default.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
