"""The register (form 06) of a receiving unit for a period: the dossiers it received in that
period, in order of reception, optionally of one procedure or in one status, page by page through
the index ``(receiving_unit, received_at)`` — a page reads its own rows, never the whole period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from motcua.errors import InvalidArgument
from routing.application import paging
from routing.application.repository import Instances
from routing.application.statistics import midnight
from routing.domain.kpi766 import Period
from routing.domain.register import RegisterRow, register_row
from routing.domain.status import Status

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class RegisterPage:
    unit: str
    period: Period
    rows: list[RegisterRow]
    first_number: int  # the register's row number ("STT") of the page's first row
    next_page_token: str  # "" on the last page


class Register:
    def __init__(self, instances: Instances, period_of: Callable[[dt.datetime, dt.datetime | None], Period]):
        self._instances = instances
        self._period_of = period_of  # local dates of the request's instants (StatisticsQuery.period)

    def page(self, *, unit: str, start: dt.datetime, end: dt.datetime | None = None, procedure_code: str = "",
             status: int = 0, page_size: int = 0, page_token: str = "") -> RegisterPage:
        if not unit.strip():
            raise InvalidArgument("unit", "give the receiving unit (slug)")
        if page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        if status and status not in {int(s) for s in Status}:
            raise InvalidArgument("status", f"{status} is not a status (1–10)")
        period = self._period_of(start, end)
        query: dict[str, Any] = {"receiving_unit": unit.strip(), "received_at": {
            "$gte": midnight(period.start), "$lt": midnight(period.end + dt.timedelta(days=1))}}
        if procedure_code.strip():
            query["procedure_code"] = procedure_code.strip()
        if status:
            query["status"] = status
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        first, cursor = _split(page_token)
        docs, token = paging.page(self._instances.collection, query, "received_at", size, cursor)
        rows = [register_row(self._instances.loaded(d).instance) for d in docs]
        return RegisterPage(unit.strip(), period, rows, first, f"{first + len(rows)}~{token}" if token else "")


def _split(token: str) -> tuple[int, str]:
    """A register token is the next row's number and the keyset cursor (the number runs on across
    pages, as the register's "STT" column does)."""
    if not token:
        return 1, ""
    number, _, cursor = token.partition("~")
    if not number.isdigit() or not cursor:
        raise InvalidArgument("page_token", "is not a token this service returned")
    return int(number), cursor
