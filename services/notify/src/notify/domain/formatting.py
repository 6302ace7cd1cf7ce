"""How a Vietnamese message writes dates and amounts (pure functions, used as Jinja2 filters)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "ICT")  # Asia/Ho_Chi_Minh: UTC+7 all year, no summer time


def local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(VIETNAM)


def vn_datetime(moment: datetime) -> str:
    """``16 giờ 00 ngày 04/5/2026``: as forms and appointments write it (Vietnam time)."""
    at = local(moment)
    return f"{at.hour:02d} giờ {at.minute:02d} ngày {at.day:02d}/{at.month}/{at.year}"


def vn_date(moment: datetime | date) -> str:
    """``ngày 04/5/2026``."""
    day = local(moment).date() if isinstance(moment, datetime) else moment
    return f"ngày {day.day:02d}/{day.month}/{day.year}"


def vnd(amount: int | float) -> str:
    """``1.500.000 đồng``: thousands grouped by dots, as Vietnamese amounts are written."""
    whole = int(round(amount))
    sign = "-" if whole < 0 else ""
    return f"{sign}{abs(whole):,}".replace(",", ".") + " đồng"
