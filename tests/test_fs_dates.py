"""fs/dates.py against the standard library's calendar, for every day FAT can store
(1980-2107) and the centuries around ISO 9660's 1900 base."""

from __future__ import annotations

import calendar

from guestboot.fs.dates import days_from_civil, days_in_month
from guestboot.fs.fat.dirent import fat_time


def test_every_day_from_1900_to_2155_agrees_with_calendar():
    for year in range(1900, 2156):
        for month in range(1, 13):
            assert days_in_month(year, month) == calendar.monthrange(year, month)[1], (year, month)
            for day in (1, days_in_month(year, month)):
                assert days_from_civil(year, month, day) * 86400 == calendar.timegm((year, month, day, 0, 0, 0)), \
                    (year, month, day)


def test_fat_times_agree_with_calendar_and_refuse_impossible_dates():
    # 2024-02-29 23:59:58: date = (44 << 9) | (2 << 5) | 29, time = (23 << 11) | (59 << 5) | 29
    assert fat_time((44 << 9) | (2 << 5) | 29, (23 << 11) | (59 << 5) | 29) == calendar.timegm((2024, 2, 29, 23, 59, 58))
    assert fat_time((43 << 9) | (2 << 5) | 29, 0) == 0  # 2023-02-29 does not exist
    assert fat_time((0 << 9) | (1 << 5) | 1, 0) == calendar.timegm((1980, 1, 1, 0, 0, 0))
