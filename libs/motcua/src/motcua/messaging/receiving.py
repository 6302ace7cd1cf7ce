"""Receiving AMQP messages whatever they carry (py-amqp, under kombu and nameko).

py-amqp decodes the short-string properties of a message (``content_type``, ``message_id``,
``type``…) as strict UTF-8 while it reads the frames, before kombu or motcua see anything. A
message whose ``message_id`` property is not UTF-8 — any producer may send one; RabbitMQ does not
check — made ``drain_events`` raise ``UnicodeDecodeError`` in the consumer's own thread: nameko's
container died, and the restarted worker got the same message again, and died again. py-amqp
already keeps header values and keys that are not UTF-8 as bytes; :func:`tolerate_undecodable_properties`
makes it do the same for properties, so such a message arrives and is parked with its reason.
"""

from __future__ import annotations

import types
from typing import Any

_MARK = "_motcua_tolerant"


def _text_or_bytes(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return bytes(raw)


def tolerate_undecodable_properties() -> None:
    """Make py-amqp keep a property that is not UTF-8 as bytes instead of failing the whole
    connection. Process-wide and idempotent; a message with only valid properties is decoded by
    py-amqp's own function, unchanged (the lenient copy runs only after that one failed)."""
    from amqp import serialization
    from amqp.spec import Basic

    strict = serialization.PROPERTY_CLASSES[Basic.CLASS_ID]
    if getattr(strict, _MARK, False):
        return
    # py-amqp's own decoder, with a lenient pstr_t: the same code, so it follows py-amqp upgrades.
    lenient = types.FunctionType(strict.__code__, {**vars(serialization), "pstr_t": _text_or_bytes},
                                 strict.__name__, strict.__defaults__, strict.__closure__)

    def decode_properties(buf: Any, offset: int) -> Any:
        try:
            return strict(buf, offset)
        except UnicodeDecodeError:
            return lenient(buf, offset)

    setattr(decode_properties, _MARK, True)
    serialization.PROPERTY_CLASSES[Basic.CLASS_ID] = decode_properties
