"""guestboot: read a guest disk image, pick the entry GRUB would boot, extract it."""

__version__ = "0.1.0"
