"""Shared test set-up. Fixture images are built once per run (session scope) by the
builders in tests/builders/, with the real tools, from the trees they are expected to hold."""


def pytest_report_header(config):
    """Which peers this run compares with: the host GRUB (tests expect Debian 12's 2.06 or
    Debian 13's 2.12, prereq.GRUB_VERSIONS_CHECKED) and the real pygrub."""
    from prereq import host_grub_version, real_pygrub

    lines = [f"host GRUB: {host_grub_version() or 'not installed'}; real pygrub: {real_pygrub() or 'not installed'}"]
    free = _free_gib(config)
    if free is not None and free < SUITE_PEAK_GIB:
        lines.append(f"WARNING: {free:.1f} GiB free for the test images; the whole suite needs about "
                     f"{SUITE_PEAK_GIB} GiB at its peak (fixture images): tests may fail with 'No space left'")
    return lines


SUITE_PEAK_GIB = 12  # what a full run's base directory held at its peak (measured), with room


def _free_gib(config) -> float | None:
    import os
    import tempfile

    where = config.option.basetemp or os.environ.get("PYTEST_DEBUG_TEMPROOT") or tempfile.gettempdir()
    while where and not os.path.exists(where):
        where = os.path.dirname(where)
    try:
        info = os.statvfs(where or "/")
    except OSError:
        return None
    return info.f_bavail * info.f_frsize / (1 << 30)
