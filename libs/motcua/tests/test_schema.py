"""Schema.prepare takes plain data in schema-less fields (``DictField()``, ``ListField(DictField())``)
past mongoengine's key-by-key walk: what it stores, and what it refuses, must be exactly what
mongoengine's own path gives — for every value, plain or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st
from mongoengine import DateTimeField, DictField, Document, IntField, ListField, StringField

from motcua.store.port import InvalidDocument
from motcua.store.schema import Schema


class Folder(Document):
    meta = {"collection": "schema_folders"}
    id = StringField(primary_key=True)
    version = IntField()
    title = StringField(required=True)
    body = DictField(required=True)
    extra = DictField(null=True)
    rows = ListField(DictField())
    typed = DictField(field=IntField())  # a declared type of value: always mongoengine's path
    at = DateTimeField()


FAST = Schema(Folder)
REFERENCE = Schema(Folder)
REFERENCE.plain_fields = {}  # mongoengine's path for every field

keys = st.one_of(st.text(max_size=6), st.sampled_from(["$set", "_cls", "a.b", ""]), st.integers(0, 3))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                    st.text(max_size=8),
                    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=7))])),
                    st.datetimes())  # naive: taken as UTC
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.tuples(inner, inner),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


def outcome(schema: Schema, doc: dict) -> object:
    try:
        return schema.prepare(doc, 7)
    except InvalidDocument as exc:
        return ("refused", str(exc))
    except Exception as exc:  # noqa: BLE001 - compared, then failed on below
        return ("crashed", repr(exc))


@settings(max_examples=400, deadline=None)
@given(body=values, extra=values, rows=values, typed=values)
def test_plain_data_is_stored_and_refused_exactly_as_mongoengine_would(body, extra, rows, typed):
    doc = {"_id": "f1", "title": "t", "body": body, "extra": extra, "rows": rows, "typed": typed,
           "at": datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)}
    fast = outcome(FAST, dict(doc))
    assert fast == outcome(REFERENCE, dict(doc))
    assert not (isinstance(fast, tuple) and fast[0] == "crashed"), fast  # bad data is refused, never a crash


def test_a_workflow_like_document_takes_the_plain_path_and_reads_back_normalized():
    at = datetime(2026, 12, 7, 8, 30, 1, 999999, tzinfo=timezone(timedelta(hours=7)))
    doc = {"_id": "f2", "title": "t", "body": {"steps": [{"role": "review", "deadline": at, "done": None}],
                                                 "n": 1, "ok": True, "x": 1.5},
           "rows": [{"a": [1, 2, {"b": at}]}]}
    stored = FAST.prepare(doc, 3)
    assert stored == REFERENCE.prepare(doc, 3)
    assert stored["body"]["steps"][0]["deadline"] == datetime(2026, 12, 7, 1, 30, 1, 999000, tzinfo=UTC)
    assert stored["body"] is not doc["body"]  # a copy: later changes to the caller's dict do not leak in


def test_an_empty_required_plain_field_is_refused_naming_it():
    assert outcome(FAST, {"_id": "f3", "title": "t", "body": {}})[0] == "refused"
    assert "body" in outcome(FAST, {"_id": "f3", "title": "t", "body": {}})[1]
