"""Reading plain JSON values (work messages, decoded requests) into domain values.

Each reader names the field it reads in the InvalidArgument it raises, with the path the caller
gave (``process.steps[2].share``), so the producer of a bad message learns exactly what to fix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from motcua.errors import InvalidArgument

E = TypeVar("E", bound=Enum)

_MISSING = object()


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(field, "must be an object")
    return value


def text(data: Mapping[str, Any], key: str, field: str, *, required: bool = True, default: str = "") -> str:
    """A string; ``required`` means present and not blank. Surrounding spaces are dropped."""
    value = data.get(key, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise InvalidArgument(field, "is required")
        return default
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    value = value.strip()
    if required and not value:
        raise InvalidArgument(field, "must not be blank")
    return value


def flag(data: Mapping[str, Any], key: str, field: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidArgument(field, "must be true or false")
    return value


def number(value: Any, field: str) -> Decimal:
    """A finite number, read exactly: floats through their shortest repr (0.05 stays 0.05)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise InvalidArgument(field, "must be a number")
    try:
        result = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidArgument(field, f"{value!r} is not a number") from None
    if not result.is_finite():
        raise InvalidArgument(field, "must be a finite number")
    return result


def whole(value: Any, field: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(field, "must be a whole number")
    if value < minimum:
        raise InvalidArgument(field, f"must be {minimum} or more")
    return value


def choice(value: Any, enum: type[E], field: str) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum)
        raise InvalidArgument(field, f"{value!r} is not one of: {allowed}") from None


def instant(value: Any, field: str) -> dt.datetime:
    """A timezone-aware datetime, or an ISO 8601 string with an offset (a naive time is refused:
    server clock, UTC or local? nobody can tell)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgument(field, f"{value!r} is not an ISO 8601 date and time") from None
    if not isinstance(value, dt.datetime):
        raise InvalidArgument(field, "must be a date and time")
    if value.utcoffset() is None:
        raise InvalidArgument(field, "must carry a time zone offset")
    return value


def optional_instant(value: Any, field: str) -> dt.datetime | None:
    return None if value is None else instant(value, field)


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def plain_number(value: Decimal) -> int | float:
    """A Decimal as JSON wants it: an int when whole, else a float (shares and half hours are
    exact as floats' shortest repr, so the round trip is lossless)."""
    return int(value) if value == value.to_integral_value() else float(value)
