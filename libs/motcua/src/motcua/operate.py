"""Operators' tools: inspect and replay parked messages, replay public events from the stream.

    python -m motcua.operate dlq-list routing.bim-son          # what is parked, and why
    python -m motcua.operate dlq-replay routing.bim-son        # move parked messages back to work
    python -m motcua.operate events --from first --limit 20    # read the event stream
    python -m motcua.operate events --from 2026-11-25T08:00:00+07:00 --to-queue platform.catch-up

Replaying is safe: every consumer is idempotent, so a message that had in fact been processed
changes nothing the second time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pika

from motcua.messaging import topology
from motcua.messaging.envelope import ATTEMPT_HEADER, HEADER_PREFIX
from motcua.settings import PlatformSettings


@dataclass(frozen=True)
class Parked:
    message_id: str
    origin_queue: str
    attempt: int
    last_error: str
    failed_at: str
    size: int


def _text(value: object) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _channel(amqp_uri: str) -> tuple[pika.BlockingConnection, pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    return connection, connection.channel()


def list_parked(amqp_uri: str, queue: str, limit: int = 100) -> list[Parked]:
    """The parked messages of ``queue`` (read without removing them: all are requeued)."""
    connection, channel = _channel(amqp_uri)
    parked = []
    try:
        for _ in range(limit):
            method, properties, body = channel.basic_get(topology.dlq_name(queue), auto_ack=False)
            if method is None:
                break
            headers = properties.headers or {}
            parked.append(Parked(
                message_id=_text(properties.message_id), origin_queue=_text(headers.get("motcua-origin-queue")),
                attempt=int(headers.get(ATTEMPT_HEADER, 0) or 0), last_error=_text(headers.get("motcua-last-error")),
                failed_at=_text(headers.get("motcua-failed-at")), size=len(body)))
    finally:
        connection.close()  # unacknowledged gets go back to the queue, in order
    return parked


def replay_parked(amqp_uri: str, queue: str, limit: int | None = None) -> int:
    """Move parked messages of ``queue`` back into it, with a fresh retry budget. Each is
    republished with confirms before it is removed from the parking queue."""
    connection, channel = _channel(amqp_uri)
    channel.confirm_delivery()
    moved = 0
    try:
        while limit is None or moved < limit:
            method, properties, body = channel.basic_get(topology.dlq_name(queue), auto_ack=False)
            if method is None:
                break
            headers = {k: v for k, v in (properties.headers or {}).items()
                       if k not in (ATTEMPT_HEADER, "motcua-last-error", "motcua-failed-at")}
            headers["motcua-replayed-from"] = topology.dlq_name(queue)
            properties.headers = headers
            channel.basic_publish("", queue, body, properties, mandatory=True)
            channel.basic_ack(method.delivery_tag)
            moved += 1
    finally:
        connection.close()
    return moved


@dataclass(frozen=True)
class StreamedEvent:
    offset: int
    id: str
    type: str
    subject: str
    area: str
    time: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties


def stream_offset(value: str) -> object:
    """'first', 'last', 'next', a number, or an ISO 8601 time (→ a timestamp, as streams take)."""
    if value in ("first", "last", "next"):
        return value
    if value.isdigit():
        return int(value)
    return datetime.fromisoformat(value)


def read_events(amqp_uri: str, start: object = "first", limit: int = 100, idle_s: float = 2.0,
                area: str | None = None) -> Iterator[StreamedEvent]:
    """Events of the stream from ``start``, until ``limit`` or ``idle_s`` without a new one."""
    connection, channel = _channel(amqp_uri)
    channel.basic_qos(prefetch_count=min(max(limit, 1), 1000))  # streams need a prefetch
    arrived: list[tuple] = []
    # basic_consume, not pika's consume() generator: cancelling that one nacks what it buffered,
    # and streams refuse nacks (the broker closes the connection).
    channel.basic_consume(topology.EVENT_STREAM, lambda ch, m, p, b: arrived.append((m, p, b)),
                          auto_ack=False, arguments={"x-stream-offset": start})
    taken = 0
    try:
        while taken < limit:
            if not arrived:
                connection.process_data_events(time_limit=idle_s)
                if not arrived:
                    break  # idle: the end of the stream, for now
            method, properties, body = arrived.pop(0)
            channel.basic_ack(method.delivery_tag)
            headers = {k: _text(v) for k, v in (properties.headers or {}).items()}
            event = StreamedEvent(
                offset=int(headers.get("x-stream-offset", -1)), id=headers.get(f"{HEADER_PREFIX}id", ""),
                type=headers.get(f"{HEADER_PREFIX}type", ""), subject=headers.get(f"{HEADER_PREFIX}subject", ""),
                area=headers.get(f"{HEADER_PREFIX}area") or headers.get(f"{HEADER_PREFIX}district", ""),
                time=headers.get(f"{HEADER_PREFIX}time", ""),
                routing_key=method.routing_key, body=body, properties=properties)
            if area and event.area != area:
                continue
            yield event
            taken += 1
    finally:
        connection.close()


def republish(amqp_uri: str, events: list[StreamedEvent], queue: str) -> int:
    """Copy events into a subscriber's queue (its own catch-up), with confirms."""
    connection, channel = _channel(amqp_uri)
    channel.confirm_delivery()
    try:
        for event in events:
            properties = event.properties
            properties.headers = {k: v for k, v in (properties.headers or {}).items() if k != "x-stream-offset"}
            channel.basic_publish("", queue, event.body, properties, mandatory=True)
    finally:
        connection.close()
    return len(events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m motcua.operate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("dlq-list", "dlq-replay"):
        command = commands.add_parser(name)
        command.add_argument("queue", help="the work queue, e.g. routing.bim-son")
        command.add_argument("--limit", type=int, default=None)
    events = commands.add_parser("events")
    events.add_argument("--from", dest="start", default="first", help="first | last | next | offset | ISO time")
    events.add_argument("--limit", type=int, default=100)
    events.add_argument("--area", help="only the events of this area")
    events.add_argument("--to-queue", help="republish the events into this (existing) queue")
    args = parser.parse_args(argv)
    amqp_uri = PlatformSettings.load().amqp_uri
    if args.command == "dlq-list":
        for parked in list_parked(amqp_uri, args.queue, args.limit or 100):
            print(json.dumps(vars(parked), ensure_ascii=False))
    elif args.command == "dlq-replay":
        print(f"moved {replay_parked(amqp_uri, args.queue, args.limit)} messages back to {args.queue}")
    else:
        found = list(read_events(amqp_uri, stream_offset(args.start), args.limit, area=args.area))
        if args.to_queue:
            print(f"republished {republish(amqp_uri, found, args.to_queue)} events to {args.to_queue}")
        else:
            for event in found:
                print(f"{event.offset:>8}  {event.time}  {event.type:<42} {event.subject}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
