"""Calendar arithmetic the drivers share, without the ``calendar`` module (it imports
locale and datetime: ~10 ms that every sandboxed run would pay up front).

Proleptic Gregorian dates, as FAT (Microsoft's FAT specification, "Date and Time
Formats") and ISO 9660 (ECMA-119 8.4.26.1, 9.1.5) store them; the day count is the
usual days-from-civil computation over 400-year eras.
"""

from __future__ import annotations

_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of ``year``-``month``-``day`` (month 1-12)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def days_in_month(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _MONTH_DAYS[month - 1]
