"""Signing's stored data: one record per signing request (its id is the request id): what came of
it (signed, or refused with the reason), the signed document and who signed it at which level."""

from __future__ import annotations

from mongoengine import DateTimeField, DictField, ListField, StringField

from motcua.messaging.outbox import AggregateSchema


class SigningRecord(AggregateSchema):
    meta = {"collection": "signing_requests", "indexes": [("area", "signed_at"), "code"]}

    dossier_id = StringField(required=True)
    code = StringField(required=True)
    area = StringField(required=True)
    outcome = StringField(default="signed")  # signed | refused
    reason = StringField()  # why it was refused
    official_id = StringField()
    seal_unit = StringField()
    level = StringField()  # B-B | B-T | B-LT | B-LTA
    draft = DictField()
    signed = DictField()
    signatures = ListField(DictField())
    signed_at = DateTimeField(required=True)  # the seal's timestamp token (or when it was refused)
