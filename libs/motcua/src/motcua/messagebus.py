"""The message bus: one handler per message type, registered once at start-up.

Entrypoints only translate: a nameko delivery becomes a message through
:class:`motcua.messaging.inbound.Inbound`, a gRPC call becomes a command in its servicer; both hand
it to the bus, which calls the application's handler for its type. Handlers get their ports (a
:class:`motcua.unit_of_work.UnitsOfWork`, object storage, renderers) injected when the bus is
built, so a service's use cases can be tested with fakes, below the integration tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class NoHandler(LookupError):
    """No handler is registered for a message's type (a wiring mistake, not the sender's)."""


class MessageBus:
    def __init__(self, handlers: Mapping[type, Callable[[Any], Any]]):
        self._handlers = dict(handlers)

    def handle(self, message: Any) -> Any:
        """The answer of the handler registered for ``type(message)``."""
        try:
            handler = self._handlers[type(message)]
        except KeyError:
            raise NoHandler(f"no handler for {type(message).__name__}") from None
        return handler(message)

    @property
    def message_types(self) -> frozenset[type]:
        return frozenset(self._handlers)
