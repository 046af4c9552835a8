"""Conformance against the real bootloaders: boot the guest's own bootloader in QEMU (TCG)
and compare what it booted with what guestboot chooses.

harness.py is the one harness (payload, disk images, QEMU, guestboot's answer, golden
files); each bootloader adds a small module that installs it on an image (grub.py,
syslinux.py, …) and a test module whose cases are data.
"""
