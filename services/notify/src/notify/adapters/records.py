"""Notify's stored data: the recipients it learnt from dossier.received, and the notifications."""

from __future__ import annotations

from mongoengine import DateTimeField, Document, IntField, StringField

from motcua.messaging.outbox import AggregateSchema


class RecipientRecord(Document):
    meta = {"collection": "recipients"}

    id = StringField(primary_key=True)  # dossier code
    version = IntField()
    area = StringField(required=True)
    receiving_unit = StringField()
    full_name = StringField(required=True)
    email = StringField()
    phone = StringField()


class NotificationRecord(AggregateSchema):
    meta = {"collection": "notifications", "indexes": [("code", "sent_at"), "cause_event_id"]}

    code = StringField(required=True)
    area = StringField(required=True)
    cause_type = StringField(required=True)
    cause_event_id = StringField(required=True)
    channel = StringField(required=True)
    address = StringField(required=True)
    text = StringField(required=True)
    status = StringField(required=True, choices=("sent", "failed"))
    sent_at = DateTimeField(required=True)
