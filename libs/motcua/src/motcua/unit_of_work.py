"""One way to write a use case: a unit of work on the persistence port (after "Architecture Patterns
with Python", cosmicpython), with the outbox built in.

A use case reads what it needs through the unit of work, decides (the domain), stages the one write
its decision makes — a new document (:meth:`UnitOfWork.add`) or a changed one over the version it
was read at (:meth:`UnitOfWork.save`) — with the messages that write causes, and commits::

    def archive(uow: UnitOfWork, returned: DossierReturned) -> None:
        if uow.get(PackageRecord, returned.dossier_id) is not None:
            return                                    # done before: nothing to write, nothing to send
        ...
        uow.add(PackageRecord, record, [archived])    # the document and its event, one write
        uow.commit()

:meth:`UnitsOfWork.run` gives each attempt a fresh unit of work and runs the use case again when
its write met another writer's: a stale version (``VersionConflict``) or a unique key another
writer took first (``DuplicateKey``: a concurrent delivery of the same message, a retried request
racing the first). The use case then reads what the other writer left and decides again — usually
that there is nothing left to do. This is the one place those two errors are handled.

Commit writes the staged document with its messages in the document's outbox (a single-document
write: no event without the state, no state without its event), then publishes exactly the
messages this write added (:meth:`motcua.messaging.outbox.Outbox.flush`); whatever a crash or a
broker outage leaves is the relay's. A use case that commits nothing writes and sends nothing.

Inside a message's handler, the write that completes the message (``commit(completes_message=
True)``) also stores the message's processed-message record, in the same transaction
(:mod:`motcua.messaging.consuming`): one commit per handled message instead of two.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from motcua.errors import Conflict
from motcua.messaging.consuming import current_receipt
from motcua.messaging.outbox import Outbox, add_messages, message_ids
from motcua.store.port import Collection, Doc, DuplicateKey, Store, VersionConflict

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ATTEMPTS = 8  # a use case that keeps meeting other writers reads again this often


@dataclass
class _Write:
    collection: Collection
    doc: Doc
    expected_version: int | None  # None: a new document
    messages: list[Any]


@dataclass
class UnitOfWork:
    """The reads and the write of one attempt of a use case."""

    store: Store
    outbox: Outbox
    _staged: list[_Write] = field(default_factory=list)
    written: list[Doc] = field(default_factory=list)  # the documents as commit stored them
    committed: bool = False

    def collection(self, schema: type) -> Collection:
        """The collection of ``schema`` (a mongoengine Document class), for the use case's reads."""
        return self.store.collection(schema)

    def get(self, schema: type, doc_id: str) -> Doc | None:
        return self.collection(schema).get(doc_id)

    def add(self, into: type | Collection, doc: Doc, messages: Iterable[Any] = ()) -> None:
        """Stage a new document (with ``_id``) and the messages its creation causes; ``into`` is
        the schema (or a repository's collection)."""
        self._stage(_Write(self._target(into), dict(doc), None, list(messages)))

    def save(self, into: type | Collection, doc: Doc, messages: Iterable[Any] = (),
             expected_version: int | None = None) -> None:
        """Stage ``doc`` changed over the version it was read at (``doc["version"]`` unless
        ``expected_version`` says otherwise) and the messages the change causes."""
        version = doc["version"] if expected_version is None else expected_version
        self._stage(_Write(self._target(into), dict(doc), int(version), list(messages)))

    def _target(self, into: type | Collection) -> Collection:
        return self.collection(into) if isinstance(into, type) else into

    def _stage(self, write: _Write) -> None:
        if self.committed:
            raise RuntimeError("this unit of work is committed; run the use case again for another write")
        self._staged.append(write)

    def commit(self, completes_message: bool = False) -> list[Doc]:
        """Write what is staged (each write with its messages in its outbox), then publish each
        write's own messages. One write per use case is the rule (DESIGN: a change and its events
        are one single-document write); several are written in order, each published right after
        itself. Raises VersionConflict or DuplicateKey when a write met another writer's (nothing
        of that write is stored); :meth:`UnitsOfWork.run` then runs the use case again.

        ``completes_message``: inside a message's handler, this write is the last one the message
        needs (:mod:`motcua.messaging.consuming`: what the handler does after it must not need
        the message again); the message's processed-message record is stored with the last staged
        write, in the same transaction, instead of in a commit of its own after the handler.
        Outside a handler, or once the record is written, it changes nothing."""
        self.committed = True
        receipt = current_receipt() if completes_message else None
        last = self._staged[-1] if self._staged else None
        for write in self._staged:
            doc = add_messages(write.doc, write.messages)
            if receipt is not None and write is last:
                with self.store.together():
                    stored = self._write(write, doc)
                    receipt.write()
                receipt.written = True
            else:
                stored = self._write(write, doc)
            self.written.append(stored)
            self.outbox.flush(write.collection, stored, message_ids(write.messages))
        self._staged.clear()
        return list(self.written)

    @staticmethod
    def _write(write: _Write, doc: Doc) -> Doc:
        if write.expected_version is None:
            return write.collection.insert(doc)
        return write.collection.replace(doc, write.expected_version)


class UnitsOfWork:
    """Runs use cases, each attempt in a fresh :class:`UnitOfWork`, again when its write met
    another writer's; the port, the outbox and the number of attempts are injected."""

    def __init__(self, store: Store, outbox: Outbox, attempts: int = DEFAULT_ATTEMPTS):
        self.store = store
        self.outbox = outbox
        self._attempts = attempts

    def start(self) -> UnitOfWork:
        return UnitOfWork(self.store, self.outbox)

    def run(self, use_case: Callable[[UnitOfWork], T], what: str = "the use case") -> T:
        """``use_case(uow)``'s answer, once one attempt's write went through (or it wrote nothing).
        Conflict (ABORTED at the gRPC edge; retried with backoff on a queue) when every attempt
        met another writer."""
        # A short random pause before reading again (full jitter, 0-2 ms, 0-4 ms, ... at most 50 ms):
        # writers that met on one document and all retried at once met again, until one ran out
        # of attempts (four threads incrementing one counter on a loaded machine).
        retrying = Retrying(stop=stop_after_attempt(self._attempts),
                            wait=wait_random_exponential(multiplier=0.001, max=0.05),
                            retry=retry_if_exception_type((VersionConflict, DuplicateKey)),
                            before_sleep=_log_conflict)
        try:
            for attempt in retrying:
                with attempt:
                    return use_case(self.start())
        except RetryError:
            raise Conflict(f"{what} kept meeting other writers ({self._attempts} attempts); try again") from None
        raise AssertionError("unreachable: every attempt returns or raises")


def _log_conflict(state: Any) -> None:
    log.info("write met another writer's; reading again",
             extra={"attempt": state.attempt_number, "conflict": type(state.outcome.exception()).__name__})
