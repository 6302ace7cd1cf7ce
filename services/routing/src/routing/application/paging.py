"""Keyset paging over an index: pages ordered by an instant field and the id, each continuing after
the last document of the page before (an opaque token), so a page costs an index range read however
deep it is — never a skip over everything before it."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from motcua.errors import InvalidArgument
from motcua.store.port import Collection, Doc


def page(collection: Collection, query: Mapping[str, Any], field: str, size: int,
         token: str) -> tuple[list[Doc], str]:
    """Up to ``size`` documents matching ``query``, in ``(field, _id)`` order, after the cursor in
    ``token`` ("" for the first page), and the token of the next page ("" on the last)."""
    after = _decode(token)
    query = dict(query)
    if after is not None:
        query[field] = {**query.get(field, {}), "$gte": after[0]}
    sort = [(field, 1), ("_id", 1)]
    limit = size + 1
    while True:
        docs = collection.find(query, sort=sort, limit=limit)
        fresh = [d for d in docs if after is None or (d[field], d["_id"]) > after]
        if len(fresh) > size or len(docs) < limit:
            break
        limit *= 2  # a cursor inside many equal instants: read further
    return fresh[:size], _encode(fresh[size - 1], field) if len(fresh) > size else ""


def _encode(doc: Mapping[str, Any], field: str) -> str:
    raw = json.dumps([doc[field].isoformat(), doc["_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode(token: str) -> tuple[dt.datetime, str] | None:
    if not token:
        return None
    try:
        instant, doc_id = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        at = dt.datetime.fromisoformat(instant)
        if at.tzinfo is None or not isinstance(doc_id, str):
            raise ValueError(token)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise InvalidArgument("page_token", "is not a token this service returned") from None
    return at, doc_id
