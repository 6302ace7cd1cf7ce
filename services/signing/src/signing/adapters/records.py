"""Signing's stored data: one record per signing request (its id is the request id)."""

from __future__ import annotations

from mongoengine import DateTimeField, DictField, ListField, StringField

from motcua.messaging.outbox import AggregateSchema


class SigningRecord(AggregateSchema):
    meta = {"collection": "signing_requests", "indexes": [("area", "signed_at"), "code"]}

    dossier_id = StringField(required=True)
    code = StringField(required=True)
    area = StringField(required=True)
    draft = DictField(required=True)
    signed = DictField(required=True)
    signatures = ListField(DictField())
    signed_at = DateTimeField(required=True)
