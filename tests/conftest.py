"""Shared test set-up. Fixture images are built once per run (session scope) by the
builders in tests/builders/, with the real tools, from the trees they are expected to hold."""


def pytest_report_header(config):
    """Which peers this run compares with: the host GRUB (tests expect Debian 12's 2.06 or
    Debian 13's 2.12, prereq.GRUB_VERSIONS_CHECKED) and the real pygrub."""
    from prereq import host_grub_version, real_pygrub

    return [f"host GRUB: {host_grub_version() or 'not installed'}; real pygrub: {real_pygrub() or 'not installed'}"]
