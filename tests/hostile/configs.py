"""One boot entry written in each config language guestboot reads, as the guest's boot
loader would find it: ``entry(language, kernel=…, initrd=…, args=…, title=…)`` gives the
tree files (path -> bytes) that make it the default entry."""

from __future__ import annotations

LANGUAGES = ("grub2", "legacy", "syslinux", "bls")

# The guest's own files a traversal is allowed to reach: distinct markers, never the host's.
GUEST_KERNEL = b"GUEST-KERNEL\x00" + bytes(range(256)) * 64
GUEST_INITRD = b"GUEST-INITRD\x00" + bytes(range(255, -1, -1)) * 32
GUEST_PASSWD = b"GUEST-PASSWD guest:x:1000:1000::/home/guest:/bin/sh\n"
GUEST_SHADOW = b"GUEST-SHADOW guest:*:19000:0:99999:7:::\n"
GUEST_FILES = {
    "/boot/vmlinuz": GUEST_KERNEL,
    "/boot/initrd.img": GUEST_INITRD,
    "/etc/passwd": GUEST_PASSWD,
    "/etc/shadow": GUEST_SHADOW,
}


def _b(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


# Where each language's honest paths start: BLS entries in /boot/loader/entries of a root
# file system name their files relative to /boot (the partition systemd-boot would read).
HONEST = {"bls": ("/vmlinuz", "/initrd.img")}


def entry(language: str, *, kernel: str | bytes | None = None, initrd: str | bytes | None = "",
          args: str | bytes = "root=/dev/vda1 ro", title: str | bytes = "Hostile") -> dict[str, bytes]:
    """``kernel``/``initrd`` None or "": the honest paths (initrd None: no initrd)."""
    honest_kernel, honest_initrd = HONEST.get(language, ("/boot/vmlinuz", "/boot/initrd.img"))
    kernel, args, title = _b(kernel or honest_kernel), _b(args), _b(title)
    initrd = None if initrd is None else _b(initrd or honest_initrd)
    if language == "grub2":
        text = b"set default=0\nset timeout=0\nmenuentry '" + title + b"' {\n  linux " + kernel + b" " + args + b"\n"
        if initrd is not None:
            text += b"  initrd " + initrd + b"\n"
        return {"/boot/grub/grub.cfg": text + b"}\n"}
    if language == "legacy":
        text = b"default 0\ntimeout 0\ntitle " + title + b"\n  root (hd0)\n  kernel " + kernel + b" " + args + b"\n"
        if initrd is not None:
            text += b"  initrd " + initrd + b"\n"
        return {"/boot/grub/menu.lst": text}
    if language == "syslinux":
        text = b"DEFAULT hostile\nLABEL hostile\n  MENU LABEL " + title + b"\n  KERNEL " + kernel + b"\n  APPEND " + args + b"\n"
        if initrd is not None:
            text += b"  INITRD " + initrd + b"\n"
        return {"/boot/extlinux/extlinux.conf": text}
    if language == "bls":
        # Type #1 entries in /boot/loader/entries of a root file system (no loader config)
        text = b"title " + title + b"\nversion 1.0\nlinux " + kernel + b"\noptions " + args + b"\n"
        if initrd is not None:
            text += b"initrd " + initrd + b"\n"
        return {"/boot/loader/entries/hostile.conf": text}
    raise ValueError(language)


def guest(language: str, **kwargs) -> dict[str, object]:
    """The guest's files plus one entry in ``language``."""
    return {**GUEST_FILES, **entry(language, **kwargs)}
