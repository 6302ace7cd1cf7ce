"""Archive's stored data: one archival package record per dossier."""

from __future__ import annotations

from mongoengine import DateTimeField, DictField, IntField, StringField

from motcua.messaging.outbox import AggregateSchema


class PackageRecord(AggregateSchema):
    meta = {"collection": "packages", "indexes": [{"fields": ["code"], "unique": True}, "archived_at"]}

    code = StringField(required=True)
    area = StringField(required=True)
    package = DictField(required=True)
    manifest_sha256 = StringField(required=True)
    document_count = IntField(required=True)
    archived_at = DateTimeField(required=True)
