"""What both backends derive from a mongoengine Document class: collection name, declared indexes,
validation and normalisation of documents, and the query rules of the port.

Documents cross the port in their stored ("son") form: keys are db field names (``_id``, ...).
Both backends store exactly what :meth:`Schema.prepare` returns, so a document reads back the same
from either: mongoengine's ``to_mongo()`` form (values converted, ``None`` dropped unless the field
is ``null=True``, defaults filled in) with every datetime made tz-aware UTC and truncated to
milliseconds, which is what MongoDB stores (naive datetimes are taken as UTC, as pymongo does).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mongoengine import DateTimeField, DictField, Document, ListField, ValidationError
from mongoengine.errors import FieldDoesNotExist, InvalidDocumentError

from .port import Doc, Filter, InvalidDocument, Sort

OPERATORS = frozenset({"$lt", "$lte", "$gt", "$gte", "$ne", "$in"})
# Conditions an index can seek on ($ne cannot: it is a scan of everything else).
_SEEKING = frozenset({"$eq", "$lt", "$lte", "$gt", "$gte", "$in"})


def utc_ms(value: datetime) -> datetime:
    """The datetime MongoDB would hand back: UTC, tz-aware, millisecond precision."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def normalize(value: Any) -> Any:
    """Copy of ``value`` with every datetime (at any depth) passed through :func:`utc_ms`."""
    if isinstance(value, datetime):
        return utc_ms(value)
    if isinstance(value, Mapping):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    return value


def conditions(cond: Any) -> dict[str, Any]:
    """A filter value as ``{operator: operand}``; a plain value is equality (``$eq``)."""
    if isinstance(cond, Mapping) and cond and all(str(k).startswith("$") for k in cond):
        return dict(cond)
    return {"$eq": cond}


@dataclass(frozen=True)
class Index:
    fields: tuple[tuple[str, Any], ...]  # (db field, 1 | -1 | a special kind such as "text")
    unique: bool
    sparse: bool
    options: dict[str, Any]  # every option mongoengine computed, for pymongo's create_index


class Schema:
    """The port's view of one mongoengine Document class (build it with :func:`schema_of`)."""

    def __init__(self, document: type[Document]):
        self.document = document
        self.name: str = document._meta["collection"]
        self.fields = {field.db_field: field for field in document._fields.values()}
        if "_id" not in self.fields or "version" not in self.fields:
            raise TypeError(f"{document.__name__} must declare `id` (primary_key=True) and `version`")
        self.datetime_fields = frozenset(n for n, f in self.fields.items() if isinstance(f, DateTimeField))
        self.plain_fields = {n: f for n, f in self.fields.items() if _holds_plain_data(f)}
        # mongoengine's computed specs: meta['indexes'] plus unique=True / unique_with fields.
        self.indexes = tuple(
            Index(
                fields=tuple((name, direction) for name, direction in spec["fields"]),
                unique=bool(spec.get("unique")),
                sparse=bool(spec.get("sparse")),
                options={k: v for k, v in spec.items() if k != "fields"},
            )
            for spec in document._meta.get("index_specs", [])
        )
        self.indexed_fields = frozenset({"_id"} | {f for ix in self.indexes for f, _ in ix.fields})
        self.leading_fields = frozenset({"_id"} | {ix.fields[0][0] for ix in self.indexes})

    # -- documents ------------------------------------------------------------------------------

    def prepare(self, doc: Mapping[str, Any], version: int) -> Doc:
        """Validate ``doc`` against the schema and return the form to store, with ``version``."""
        if not isinstance(doc, Mapping):
            raise InvalidDocument(f"{self.name}: a document must be a mapping, not {type(doc).__name__}")
        son = {k: v for k, v in doc.items() if k != "version"}
        plain = self._take_plain_data(son)
        try:
            obj = self.document._from_son(son)
            obj.validate()
        except ValidationError as exc:
            raise InvalidDocument(f"{self.name}: {self._describe(exc)}") from exc
        except (FieldDoesNotExist, InvalidDocumentError, ValueError, TypeError, OverflowError) as exc:
            raise InvalidDocument(f"{self.name}: {exc}") from exc
        stored = normalize(obj.to_mongo())  # SON -> plain dicts, in the same pass
        stored.update(plain)  # in the places their stand-ins held
        stored["version"] = version
        return stored

    def _take_plain_data(self, son: dict[str, Any]) -> Doc:
        """Take out of ``son`` the values of the schema-less fields (``DictField()``,
        ``ListField(DictField())``) that hold plain data, normalized; a stand-in of the same
        emptiness takes each one's place.

        Why: mongoengine converts, validates and converts back such a value key by key, through
        generic code looking for documents and references at every level; for plain data (what
        JSON holds, and datetimes) all three are the identity, and for a workflow instance
        (~4 KB) they were most of the cost of storing it. Anything else (a document, a tuple, a
        non-string key, ``_cls``) is left to mongoengine, as is an empty required value (its
        error)."""
        taken: Doc = {}
        for name, field in self.plain_fields.items():
            value = son.get(name)
            if not value or (copy := _plain_copy(value, top_level=type(field))) is None:
                continue
            taken[name] = copy
            son[name] = _STAND_INS[type(field)]
        return taken

    def prepare_fields(self, values: Mapping[str, Any]) -> Doc:
        """Validate a partial update (``claim``'s ``set_fields``) field by field."""
        out: Doc = {}
        for name, value in values.items():
            field = self.fields.get(name)
            if field is None or name in ("_id", "version"):
                raise InvalidDocument(f"{self.name}: cannot set field {name!r}")
            if value is None:
                if field.required:
                    raise InvalidDocument(f"{self.name}: field {name!r} is required")
                out[name] = None
                continue
            try:
                value = field.to_python(value)
                field._validate(value)  # what Document.validate() runs per field (choices included)
            except ValidationError as exc:
                raise InvalidDocument(f"{self.name}: field {name!r}: {exc.message}") from exc
            except (ValueError, TypeError, OverflowError) as exc:
                raise InvalidDocument(f"{self.name}: field {name!r}: {exc}") from exc
            out[name] = normalize(field.to_mongo(value))
        return out

    def _describe(self, exc: ValidationError) -> str:
        """Name the offending fields by their stored names (``_id``, not ``id``)."""
        errors = exc.to_dict() if exc.errors else {}
        if not errors:
            return str(exc)
        attr_to_db = {attr: f.db_field for attr, f in self.document._fields.items()}
        return "; ".join(f"field {attr_to_db.get(k, k)!r}: {v}" for k, v in errors.items())

    # -- queries --------------------------------------------------------------------------------

    def check_query(self, filter: Filter, sort: Sort = ()) -> None:
        """Enforce the port's query rules (both backends, so code behaves the same on either):
        only ``_id`` and indexed fields, only the port's operators, and a non-empty filter must
        seek on ``_id`` or on the first field of a declared index, so that every query is
        index-bound."""
        seeks = False
        for name, cond in filter.items():
            if name not in self.indexed_fields:
                raise ValueError(f"{self.name}: field {name!r} is not indexed; declare an index to query it")
            ops = conditions(cond)
            unknown = set(ops) - OPERATORS - {"$eq"}
            if unknown:
                raise ValueError(f"{self.name}: unsupported operators {sorted(unknown)} on {name!r}")
            if "$in" in ops and not isinstance(ops["$in"], list | tuple | set | frozenset):
                raise ValueError(f"{self.name}: $in on {name!r} needs a list")
            seeks = seeks or (name in self.leading_fields and bool(set(ops) & _SEEKING))
        if filter and not seeks:
            raise ValueError(
                f"{self.name}: filter {sorted(filter)} cannot use an index; it must constrain _id or "
                f"the first field of an index ({sorted(self.leading_fields)})"
            )
        for name, direction in sort:
            if name not in self.indexed_fields:
                raise ValueError(f"{self.name}: cannot sort on non-indexed field {name!r}")
            if direction not in (1, -1):
                raise ValueError(f"{self.name}: sort direction must be 1 or -1, not {direction!r}")

    def check_array(self, field: str) -> None:
        if field not in self.fields:
            raise ValueError(f"{self.name}: no field {field!r}")


# The smallest non-empty value each kind of schema-less field accepts (see Schema._take_plain_data).
_STAND_INS: dict[type, Any] = {DictField: {"": None}, ListField: [{}]}
_PLAIN_SCALARS = (str, int, float, bool, type(None))


def _holds_plain_data(field: Any) -> bool:
    """A ``DictField()`` or a ``ListField(DictField())``: no declared type of value, no rule of its own."""
    def unruled(f: Any) -> bool:
        return f.validation is None and not f.choices
    if type(field) is DictField:
        return field.field is None and unruled(field)
    return (type(field) is ListField and field.max_length is None and unruled(field)
            and type(field.field) is DictField and field.field.field is None and unruled(field.field))


def _plain_copy(value: Any, top_level: type | None = None) -> Any:
    """``value`` normalized (:func:`normalize`) when it is plain data: dicts with string keys (not
    ``$...`` nor ``_cls``, which mongoengine treats apart), lists, strings, numbers, booleans,
    None and datetimes; None when it holds anything else. ``top_level`` is the field's kind: a
    ``DictField`` holds a dict, a ``ListField`` a list of dicts."""
    kind = type(value)
    if top_level is not None and kind is not {DictField: dict, ListField: list}[top_level]:
        return None
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str or k.startswith("$") or k == "_cls":
                return None
            if type(v) in _PLAIN_SCALARS:
                out[k] = v
            elif (v := _plain_copy(v)) is None:
                return None
            else:
                out[k] = v
        return out
    if kind is list:
        out_list = []
        for v in value:
            if top_level is ListField and type(v) is not dict:
                return None
            if type(v) in _PLAIN_SCALARS:
                out_list.append(v)
            elif (v := _plain_copy(v)) is None:
                return None
            else:
                out_list.append(v)
        return out_list
    if kind is datetime:
        return utc_ms(value)
    return None


@functools.cache
def schema_of(document: type[Document]) -> Schema:
    return Schema(document)
