"""Errors a use case raises, one per answer a caller can act on.

Services' domain errors subclass these; the gRPC edge maps them to status codes through one table
(:mod:`motcua.grpcsupport`). Pure Python: domain code may import this module.
"""

from __future__ import annotations

# At most this many characters of a value a caller sent go into a message about it: a 1 MB field
# must not come back as a 1 MB status message (the client would refuse its trailer).
QUOTE_LIMIT = 64


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A caller's value for a message, as ``repr`` shows it: at most ``limit`` characters of it,
    then an ellipsis. ``quote("bim-son") == "'bim-son'"``."""
    text = value if isinstance(value, str) else str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}…"


class DomainError(Exception):
    """Base of errors that describe what the caller did wrong or asked too early."""


class InvalidArgument(DomainError):
    """A field of the request is missing or malformed."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    """The named thing (dossier, procedure, district, ...) does not exist."""


class AlreadyExists(DomainError):
    """A request id was reused for a different request."""


class FailedPrecondition(DomainError):
    """The action is not allowed in the current state."""


class PermissionDenied(DomainError):
    """The caller may not do this."""


class Unauthenticated(DomainError):
    """The caller did not say who it is (no client certificate) where that is needed."""


class Conflict(DomainError):
    """Someone else changed the same thing first; retry with fresh data."""


class Unavailable(DomainError):
    """A dependency (broker, object storage) is out of reach; retrying later may succeed."""
