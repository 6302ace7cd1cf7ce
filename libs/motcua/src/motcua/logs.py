"""JSON structured logging with the dossier code, area, receiving unit, event id and trace id bound.

``bind(...)`` adds fields to every log record written inside it (contextvars, so it follows
threads' and greenlets' own contexts). Personal data of citizens is never bound or logged.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

BOUND_FIELDS = ("service", "dossier_code", "area", "unit", "event_id", "trace_id", "request_id")
_bound: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("motcua_log_fields", default=None)


@contextmanager
def bind(**fields: str | None) -> Iterator[None]:
    unknown = set(fields) - set(BOUND_FIELDS)
    if unknown:
        raise ValueError(f"not a bound log field: {sorted(unknown)}")
    token = _bound.set({**(_bound.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _bound.reset(token)


class _BoundFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_bound.get() or {}).items():
            setattr(record, key, value)
        return True


def configure(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process; call once at start-up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"asctime": "time", "levelname": "level"},
                                       static_fields={"service": service}))
    handler.addFilter(_BoundFields())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kombu", "amqp", "urllib3", "nameko", "eventlet", "fontTools"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
