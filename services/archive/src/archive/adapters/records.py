"""Archive's stored data: what it learned of each dossier's life, the ledger (one entry per
package, hash-chained; the entry is the package's record), and the ledger head's timestamps."""

from __future__ import annotations

from mongoengine import BooleanField, DateTimeField, DictField, IntField, ListField, StringField

from motcua.messaging.outbox import AggregateSchema


class DossierLifeRecord(AggregateSchema):
    """Per dossier: the events of its life the archive subscribed to, its retention class, and
    ``frozen`` once its package is being made (later events are not part of the package)."""

    meta = {"collection": "dossier_lives"}

    code = StringField(required=True)
    area = StringField(required=True)
    retention = StringField(default="")
    procedure_name = StringField(default="")
    applicant = StringField(default="")
    receipt = DictField(null=True)
    forms_issued = DictField()  # form number → its sealed PDF as stored (dossier.form_issued)
    awaiting_return = DictField(null=True)  # dossier.returned, while a form it names is still to follow
    events = ListField(DictField())
    frozen = BooleanField(default=False)


class LedgerRecord(AggregateSchema):
    """One ledger entry = one package: ``_id`` is the zero-padded sequence number; the chained
    fields (archive.domain.ledger.CHAINED) never change; fixity, legal hold and repairs do."""

    meta = {"collection": "ledger", "indexes": [
        {"fields": ["seq"], "unique": True}, {"fields": ["dossier_id"], "unique": True}, "code",
        ("area", "recorded_at"), "fixity_due_at"]}

    seq = IntField(required=True)
    dossier_id = StringField(required=True)
    code = StringField(required=True)
    area = StringField(required=True)
    package_sha256 = StringField(required=True)
    package_size = IntField(required=True)
    manifest_sha256 = StringField(default="")
    document_count = IntField(default=0)
    documents = ListField(DictField())
    copies = ListField(DictField())
    retention = StringField(required=True)
    retain_until = StringField(required=True)
    lock_mode = StringField(required=True)
    recorded_at = StringField(required=True)
    prev_hash = StringField(required=True)
    hash = StringField(required=True)
    # mutable, outside the chain
    fixity_due_at = DateTimeField(required=True)
    fixity = DictField()
    legal_hold = BooleanField(default=False)
    legal_hold_reason = StringField(default="")
    repairs = ListField(DictField())


class LedgerStampRecord(AggregateSchema):
    """An RFC 3161 timestamp token over the ledger head (``_id``: the entry's zero-padded seq)."""

    meta = {"collection": "ledger_stamps", "indexes": ["seq"]}

    seq = IntField(required=True)
    head_hash = StringField(required=True)
    stamped_at = DateTimeField(required=True)
    tsa_url = StringField(required=True)
    token = StringField(required=True)  # base64 DER TimeStampResp token


# The package record's name before the ledger: one ledger entry is one package (counting either
# counts packages).
PackageRecord = LedgerRecord
