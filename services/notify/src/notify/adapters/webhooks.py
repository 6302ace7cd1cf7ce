"""Webhook delivery over HTTP, signed per Standard Webhooks with the ``standardwebhooks`` package;
the URL policy (https in production, no private addresses unless allowed); the CloudEvents JSON
document a delivery carries; the event stream a redelivery reads."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import requests
from google.protobuf import descriptor_pool, json_format, message_factory
from standardwebhooks.webhooks import Webhook

from motcua.messaging.envelope import CloudEvent
from notify.domain.delivery import TransientDeliveryError
from notify.domain.webhooks import InvalidSubscription, check_url_shape, is_public


class StandardWebhookSender:
    def __init__(self, timeout_s: float = 10.0, urls: UrlPolicy | None = None, session: requests.Session | None = None):
        self.timeout_s = timeout_s
        self._urls = urls
        self._session = session or requests.Session()

    @staticmethod
    def headers(message_id: str, body: str, secrets: list[str], now: datetime | None = None) -> dict[str, str]:
        moment = now or datetime.now(UTC)
        signatures = " ".join(Webhook(secret).sign(message_id, moment, body) for secret in secrets)
        return {"webhook-id": message_id, "webhook-timestamp": str(int(moment.timestamp())),
                "webhook-signature": signatures, "content-type": "application/cloudevents+json; charset=utf-8",
                "user-agent": "motcua-notify/1 (Standard Webhooks)"}

    def send(self, url: str, message_id: str, body: str, secrets: list[str]) -> str:
        if self._urls is not None:  # again at each send: a name may resolve elsewhere now
            try:
                self._urls.check(url)
            except InvalidSubscription as exc:
                raise TransientDeliveryError(f"endpoint not allowed now: {exc}") from exc
        try:
            answer = self._session.post(url, data=body.encode("utf-8"), headers=self.headers(message_id, body, secrets),
                                        timeout=self.timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            raise TransientDeliveryError(f"endpoint unreachable: {type(exc).__name__}") from exc
        text = f"{answer.status_code} {answer.text[:200]}"
        if 200 <= answer.status_code < 300:
            return text
        raise TransientDeliveryError(f"endpoint answered {answer.status_code}", text)


class UrlPolicy:
    """https only unless ``allow_http``; every address the host resolves to must be public unless
    ``allow_private`` (no webhooks into the platform's own network)."""

    def __init__(self, allow_http: bool = False, allow_private: bool = False):
        self.allow_http = allow_http
        self.allow_private = allow_private

    def check(self, url: str) -> None:
        host = check_url_shape(url, self.allow_http)
        if self.allow_private:
            return
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except (socket.gaierror, UnicodeError) as exc:
            raise InvalidSubscription("url", f"host {host!r} does not resolve") from exc
        private = sorted(a for a in addresses if not is_public(a.split("%", 1)[0]))
        if private:
            raise InvalidSubscription("url", f"host {host!r} resolves to a non-public address ({private[0]})")


def cloudevent_json(event: CloudEvent) -> str:
    """The event as a CloudEvents 1.0 JSON document (structured mode): the protobuf data as JSON
    (``data``) when its schema is known here, else base64 (``data_base64``)."""
    document = {"specversion": "1.0", "id": event.id, "source": event.source, "type": event.type,
                "subject": event.subject, "time": event.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "area": event.area, "dataschema": event.dataschema}
    if event.traceparent:
        document["traceparent"] = event.traceparent
    name = event.dataschema.rsplit("/", 1)[-1]
    try:
        cls = message_factory.GetMessageClass(descriptor_pool.Default().FindMessageTypeByName(name))
        data = cls.FromString(event.data)
        document["datacontenttype"] = "application/json"
        document["data"] = json_format.MessageToDict(data, preserving_proto_field_name=True)
    except Exception:  # noqa: BLE001 - an unknown or undecodable payload travels as it is
        document["datacontenttype"] = event.datacontenttype
        document["data_base64"] = base64.b64encode(event.data).decode("ascii")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


class StreamHistory:
    """Reads ``motcua.events.stream`` from a time up to now (RabbitMQ stream, x-stream-offset)."""

    def __init__(self, amqp_uri: str, idle_s: float = 1.0):
        self.amqp_uri = amqp_uri
        self.idle_s = idle_s

    def since(self, moment: datetime) -> Iterator[CloudEvent]:
        from kombu import Connection, Consumer, Queue

        from motcua.messaging.envelope import InvalidEnvelope, parse_event
        from motcua.messaging.topology import event_stream

        until = datetime.now(UTC)
        found: list[CloudEvent] = []
        stream = event_stream()
        queue = Queue(stream.name, exchange=stream.exchange, routing_key=stream.routing_key, durable=True,
                      queue_arguments=stream.queue_arguments, consumer_arguments={"x-stream-offset": moment},
                      no_declare=True)
        done = False

        def on_message(message) -> None:
            nonlocal done
            try:
                event = parse_event(message.body, message.headers or {}, message.content_type)
            except InvalidEnvelope:
                message.ack()
                return
            message.ack()
            if event.time > until:
                done = True
                return
            if event.time >= moment:
                found.append(event)

        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            channel.basic_qos(0, 500, False)
            with Consumer(channel, queues=[queue], on_message=on_message, no_ack=False, auto_declare=False):
                while not done:
                    try:
                        connection.drain_events(timeout=self.idle_s)
                    except TimeoutError:  # nothing more within idle_s: the stream is read up to now
                        break
        yield from found
