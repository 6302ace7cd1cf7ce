"""Dates, times and amounts as Vietnamese administrative documents write them, in Vietnam's time.

Decree 30/2020/NĐ-CP: days below 10 and the months January and February take a leading zero
(``04/02/2026``, ``04/5/2026``), so a date cannot be altered by adding a digit. One module for every
form, notice and message the platform writes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from motcua.worktime import VN_TZ


def _local(t: dt.datetime) -> dt.datetime:
    """``t`` in Vietnam's time; a naive datetime is taken as UTC (as the store hands them back)."""
    return (t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t).astimezone(VN_TZ)


def _month(month: int) -> str:
    return f"{month:02d}" if month < 3 else str(month)


def day(t: dt.datetime | dt.date) -> str:
    """``04/5/2026``."""
    d = _local(t).date() if isinstance(t, dt.datetime) else t
    return f"{d.day:02d}/{_month(d.month)}/{d.year}"


def when(t: dt.datetime) -> str:
    """``16 giờ 00 ngày 04/5/2026``."""
    local = _local(t)
    return f"{local:%H} giờ {local:%M} ngày {day(local)}"


def dated(place: str, t: dt.datetime) -> str:
    """``Thanh Hóa, ngày 04 tháng 5 năm 2026`` (the dated line under a document's heading)."""
    local = _local(t)
    text = f"ngày {local.day:02d} tháng {_month(local.month)} năm {local.year}"
    return f"{place}, {text}" if place else text.capitalize()


def vnd(amount: int | float | Decimal) -> str:
    """``1.250.000 đồng``: whole đồng, thousands grouped by dots."""
    whole = int(round(amount))
    sign = "-" if whole < 0 else ""
    return f"{sign}{abs(whole):,}".replace(",", ".") + " đồng"
