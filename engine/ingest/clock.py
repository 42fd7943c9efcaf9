"""Calendar arithmetic on numpy arrays: civil dates to days, wall clocks to UTC nanoseconds."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "NS_PER_DAY",
    "NS_PER_S",
    "UTC_NAMES",
    "civil_from_days",
    "days_from_civil",
    "first_invalid_date",
    "localize",
]

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
UTC_NAMES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Zulu", "Etc/Zulu", "UCT"})
MIN_YEAR, MAX_YEAR = 1678, 2261  # int64 nanoseconds cover 1677-09-21 .. 2262-04-11
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    y = y.astype(np.int64) - (m <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (m.astype(np.int64) + 9) % 12  # March = 0
    doy = (153 * mp + 2) // 5 + d.astype(np.int64) - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of days since 1970-01-01; the inverse of days_from_civil."""
    z = days.astype(np.int64) + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def first_invalid_date(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> tuple[int, str] | None:
    """(row, reason) of the first impossible calendar date, or None when all are valid."""
    bad_year = (y < MIN_YEAR) | (y > MAX_YEAR)
    bad_month = (m < 1) | (m > 12)
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    dim = _DAYS_IN_MONTH[np.clip(m, 0, 12)] + ((m == 2) & leap)
    bad_day = (d < 1) | (d > dim)
    bad = bad_year | bad_month | bad_day
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    if bad_year[i]:
        why = f"year {int(y[i])} is outside {MIN_YEAR}..{MAX_YEAR}"
    elif bad_month[i]:
        why = f"month {int(m[i])} does not exist"
    else:
        why = f"day {int(d[i])} does not exist in {int(y[i])}-{int(m[i]):02d}"
    return i, why


def localize(local_ns: np.ndarray, tz: str) -> tuple[np.ndarray, int | None]:
    """UTC ns of exchange-local wall-clock times; (utc, None) or (partial, first bad row).

    A wall-clock time that a daylight-saving change skips or repeats cannot be placed
    without guessing; its row is returned instead of a result.
    """
    if tz in UTC_NAMES or local_ns.shape[0] == 0:
        return local_ns, None
    idx = pd.DatetimeIndex(local_ns.view("datetime64[ns]")).tz_localize(
        tz, ambiguous="NaT", nonexistent="NaT"
    )
    nat = np.asarray(idx.isna())
    if nat.any():
        return local_ns, int(np.argmax(nat))
    return np.ascontiguousarray(idx.as_unit("ns").asi8, dtype=np.int64), None
