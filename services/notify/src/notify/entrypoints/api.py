"""Notify's gRPC api process (grpcio): ``motcua.notify.v1.SubscriptionService``, the webhook
subscriptions of subscribing systems. decode → use case → encode; errors become status codes in
motcua.grpcsupport. The caller's agency (client certificate CN under mutual TLS) owns what it
creates and sees nothing else; a subscription's areas must be areas its grant allows."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import grpc

from motcua import access, logs
from motcua.errors import InvalidArgument
from motcua.grpcsupport import Api, caller_agency, serve
from motcua.notify.v1 import notify_pb2, notify_pb2_grpc
from motcua.protobufs import datetime_of, timestamp
from motcua.runtime import Infrastructure
from notify.application.webhooks import Webhooks
from notify.config import NotifySettings
from notify.entrypoints.bootstrap import webhooks

log = logging.getLogger(__name__)
SERVICE_NAME = notify_pb2.DESCRIPTOR.services_by_name["SubscriptionService"].full_name
STATUS = {"enabled": notify_pb2.SUBSCRIPTION_STATUS_ENABLED, "disabled": notify_pb2.SUBSCRIPTION_STATUS_DISABLED}


def subscription_message(doc: Mapping[str, Any]) -> notify_pb2.Subscription:
    message = notify_pb2.Subscription(
        subscription_id=doc["_id"], url=doc["url"], event_types=doc["event_types"], areas=doc["areas"],
        description=doc.get("description") or "", status=STATUS.get(doc["status"], 0), note=doc.get("note") or "",
        owner=doc.get("owner") or "", created_at=timestamp(doc["created_at"]))
    if doc.get("updated_at"):
        message.updated_at.CopyFrom(timestamp(doc["updated_at"]))
    if doc.get("failing_since"):
        message.failing_since.CopyFrom(timestamp(doc["failing_since"]))
    return message


def delivery_message(doc: Mapping[str, Any]) -> notify_pb2.Delivery:
    message = notify_pb2.Delivery(
        delivery_id=doc["_id"], subscription_id=doc["subscription_id"], event_id=doc["event_id"],
        event_type=doc["event_type"], status=doc["status"], created_at=timestamp(doc["created_at"]),
        attempts=[notify_pb2.DeliveryAttempt(
            number=a["number"], started_at=timestamp(a["started_at"]), ended_at=timestamp(a["ended_at"]),
            outcome=a["outcome"], response=a.get("response") or a.get("error") or "")
            for a in doc.get("attempts") or []])
    if doc["status"] == "pending" and doc.get("next_attempt_at"):
        message.next_attempt_at.CopyFrom(timestamp(doc["next_attempt_at"]))
    return message


def _areas_allowed(areas: list[str]) -> None:
    for area in areas:
        access.require_area(area)


class SubscriptionServicer(notify_pb2_grpc.SubscriptionServiceServicer):
    def __init__(self, hooks: Webhooks):
        self._hooks = hooks

    @staticmethod
    def _owner(context: grpc.ServicerContext) -> str:
        return caller_agency(context) or ""

    def CreateSubscription(self, request, context):
        _areas_allowed(list(request.areas))
        doc, secret = self._hooks.create(self._owner(context), request.request_id, request.url,
                                         list(request.event_types), list(request.areas), request.description)
        return notify_pb2.CreateSubscriptionResponse(subscription=subscription_message(doc), secret=secret)

    def ListSubscriptions(self, request, context):
        return notify_pb2.ListSubscriptionsResponse(
            subscriptions=[subscription_message(d) for d in self._hooks.list(self._owner(context))])

    def GetSubscription(self, request, context):
        doc = self._hooks.get(self._owner(context), request.subscription_id)
        return notify_pb2.GetSubscriptionResponse(subscription=subscription_message(doc))

    def UpdateSubscription(self, request, context):
        _areas_allowed(list(request.areas))
        doc = self._hooks.update(self._owner(context), request.subscription_id, request.url,
                                 list(request.event_types) or None, list(request.areas) or None,
                                 request.description, request.enable)
        return notify_pb2.UpdateSubscriptionResponse(subscription=subscription_message(doc))

    def DeleteSubscription(self, request, context):
        self._hooks.delete(self._owner(context), request.subscription_id)
        return notify_pb2.DeleteSubscriptionResponse()

    def RotateSecret(self, request, context):
        secret, until = self._hooks.rotate(self._owner(context), request.subscription_id)
        return notify_pb2.RotateSecretResponse(secret=secret, previous_valid_until=timestamp(until))

    def SendTestEvent(self, request, context):
        delivery, event = self._hooks.send_test(self._owner(context), request.subscription_id)
        return notify_pb2.SendTestEventResponse(delivery_id=delivery, event_id=event)

    def ListDeliveries(self, request, context):
        docs = self._hooks.deliveries(self._owner(context), request.subscription_id, request.page_size)
        return notify_pb2.ListDeliveriesResponse(deliveries=[delivery_message(d) for d in docs])

    def RedeliverSince(self, request, context):
        if not request.HasField("since"):
            raise InvalidArgument("since", "required")
        since = datetime_of(request.since, "since")
        queued = self._hooks.redeliver_since(self._owner(context), request.subscription_id, since)
        return notify_pb2.RedeliverSinceResponse(queued=queued)


def build_api(settings: NotifySettings) -> Api:
    """What one server process of the api serves, on infrastructure of its own."""
    infra = Infrastructure.connect(settings)
    servicer = SubscriptionServicer(webhooks(settings, infra.units_of_work(), with_history=True))
    return Api(lambda s: notify_pb2_grpc.add_SubscriptionServiceServicer_to_server(servicer, s), on_stop=infra.close)


def main() -> int:
    settings = NotifySettings.load()
    logs.configure("notify-api", settings.log_level)
    return serve("notify api", settings, [SERVICE_NAME], build_api)


if __name__ == "__main__":
    sys.exit(main())
