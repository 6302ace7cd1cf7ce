"""Notify's stored data: the recipients it learnt from dossier.received, the notices waiting for
one, and the notifications with their attempts."""

from __future__ import annotations

from mongoengine import DateTimeField, DictField, Document, IntField, ListField, StringField

from motcua.messaging.outbox import AggregateSchema
from notify.domain.notifications import STATUSES


class RecipientRecord(Document):
    meta = {"collection": "recipients"}

    id = StringField(primary_key=True)  # dossier code
    version = IntField()
    area = StringField(required=True)
    receiving_unit = StringField()
    full_name = StringField(required=True)
    email = StringField()
    phone = StringField()
    procedure_code = StringField()
    procedure_name = StringField()
    unit_name = StringField()
    received_at = StringField()  # ISO 8601, as the event said
    due_at = StringField()
    channels = ListField(StringField())  # the applicant's choice (empty: every channel with an address)


class WaitingNoticeRecord(Document):
    """A notifiable event of a dossier whose dossier.received notify has not seen yet."""

    meta = {"collection": "waiting_notices", "indexes": [("code", "received_at"), "received_at"]}

    id = StringField(primary_key=True)  # the event's id
    version = IntField()
    code = StringField(required=True)
    notice = DictField(required=True)
    received_at = DateTimeField(required=True)


class NotificationRecord(AggregateSchema):
    meta = {"collection": "notifications",
            "indexes": [("code", "created_at"), "cause_event_id", ("status", "next_attempt_at"),
                        ("status", "sending_since")]}

    code = StringField(required=True)
    area = StringField(required=True)
    receiving_unit = StringField()
    cause_type = StringField(required=True)
    cause_event_id = StringField(required=True)
    channel = StringField(required=True)
    address = StringField(required=True)
    subject = StringField()
    text = StringField(required=True)
    html = StringField()
    attachments = ListField(DictField())  # document references (form 02), e-mail only
    status = StringField(required=True, choices=STATUSES)
    attempts = ListField(DictField())  # number, started_at, ended_at, outcome, response, error
    created_at = DateTimeField(required=True)
    next_attempt_at = DateTimeField()
    sending_since = DateTimeField(null=True)
    delivered_at = DateTimeField()
    failed_at = DateTimeField()
    failure = StringField()
    traceparent = StringField()


class SubscriptionRecord(AggregateSchema):
    """A webhook subscription; its outbox carries webhook.endpoint_disabled."""

    meta = {"collection": "subscriptions", "indexes": [("owner", "created_at")]}

    owner = StringField()
    url = StringField(required=True)
    event_types = ListField(StringField())
    areas = ListField(StringField())
    description = StringField()
    status = StringField(required=True, choices=("enabled", "disabled"))
    note = StringField()
    secret = StringField(required=True)
    previous_secret = StringField()
    previous_valid_until = DateTimeField()
    failing_since = DateTimeField(null=True)
    created_at = DateTimeField(required=True)
    updated_at = DateTimeField()


class WebhookDeliveryRecord(Document):
    """One event to one subscription, with every attempt."""

    meta = {"collection": "webhook_deliveries",
            "indexes": [("status", "next_attempt_at"), ("status", "sending_since"), ("subscription_id", "created_at")]}

    id = StringField(primary_key=True)
    version = IntField()
    subscription_id = StringField(required=True)
    event_id = StringField(required=True)
    event_type = StringField(required=True)
    area = StringField()
    body = StringField(required=True)
    status = StringField(required=True, choices=STATUSES)
    attempts = ListField(DictField())
    created_at = DateTimeField(required=True)
    next_attempt_at = DateTimeField()
    sending_since = DateTimeField(null=True)
    delivered_at = DateTimeField()
    failure = StringField()
