"""The AMQP side of the fuzz suite: messages with random headers, properties and bodies, published
with pika (which sends what motcua's own publisher never would) into every work queue of the
platform running as processes. Every message must be accounted for — processed (its id in the
consuming service's processed_messages) or parked in its queue's ``.dlq`` exactly once — the work
and retry queues must drain, and every process must still run."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections import Counter, defaultdict
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
import pytest
from hypothesis import given
from hypothesis import strategies as st
from motcua_dev.fuzzing import amqp_messages, fuzz_settings, header_values

from motcua.areas import catalog_areas
from motcua.messaging.topology import SERVICES, dlq_name
from motcua.settings import SAMPLE_CATALOG

pytestmark = pytest.mark.fuzz

AREAS = catalog_areas(SAMPLE_CATALOG)
WORK_TYPES = ["routing.route_dossier", "routing.signing_completed", "routing.render_form", "signing.sign_document",
              "intake.render_form", "notify.deliver"]
EVENT_TYPES = [f"vn.motcua.{name}.v1" for name in ("dossier.received", "dossier.assigned", "dossier.returned",
                                                     "dossier.supplement_requested", "dossier.withdrawn",
                                                     "document.signed", "dossier.result_ready",
                                                     "dossier.payment_requested", "dossier.apology_issued")]
SEQ = "fuzz-seq"  # our own tag, set last so no generated header replaces it


def _vhost(fuzz) -> str:
    return unquote(urlsplit(fuzz.platform.env["MOTCUA_AMQP_URI"]).path.lstrip("/"))


def queue_depths(vhost: str) -> dict[str, int]:
    """Messages (ready and unacknowledged) in every queue of the vhost, as the broker counts them."""
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "messages"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return {name: int(count) for name, count in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def _drained(depths: dict[str, int], service: str) -> bool:
    return all(count == 0 for name, count in depths.items()
               if name.startswith(f"{service}.") and not name.endswith(".dlq"))


def parked(channel, queue: str) -> list[dict[str, Any]]:
    """Every message of ``queue``'s parking queue (taken out: the vhost is the test's own)."""
    found = []
    while True:
        method, properties, _ = channel.basic_get(dlq_name(queue), auto_ack=True)
        if method is None:
            return found
        found.append(properties.headers or {})


def processed_ids(fuzz, service: str) -> set[str]:
    path = fuzz.platform.data_dir / f"{service}.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        try:
            rows = db.execute("SELECT json_extract(doc, '$.message_id') FROM processed_messages").fetchall()
        except sqlite3.OperationalError:
            return set()
    return {row[0] for row in rows}


def _ids(headers: dict) -> set[str]:
    ids = set()
    for key in ("message-id", "cloudEvents:id"):
        value = headers.get(key)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            ids.add(value)
    return ids


@pytest.mark.parametrize("service", SERVICES)
def test_random_messages_into_work_queues(fuzz, service: str):
    vhost = _vhost(fuzz)
    queues = [f"{service}.{area}" for area in AREAS]
    sent: dict[str, tuple[str, set[str]]] = {}  # seq → (queue, the ids it carries)
    connection = pika.BlockingConnection(pika.URLParameters(fuzz.platform.env["MOTCUA_AMQP_URI"]))
    channel = connection.channel()
    channel.confirm_delivery()

    @fuzz_settings()
    @given(queue=st.sampled_from(queues), message=amqp_messages(WORK_TYPES, EVENT_TYPES),
           message_id=st.one_of(st.just("unique"), st.just("unique"), st.none(), header_values()))
    def publish_one(queue: str, message: dict[str, Any], message_id: Any) -> None:
        seq = f"{service}-{len(sent)}"
        headers = dict(message["headers"])
        if message_id == "unique":
            headers["message-id"] = f"fuzz-{seq}"
        elif message_id is not None:
            headers["message-id"] = message_id
        headers[SEQ] = seq
        channel.basic_publish("", queue, message["body"],
                              pika.BasicProperties(headers=headers, **message["properties"]), mandatory=True)
        sent[seq] = (queue, _ids(headers))

    publish_one()
    deadline = time.monotonic() + 180
    while not _drained(depths := queue_depths(vhost), service) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _drained(depths, service), {q: n for q, n in depths.items() if n and not q.endswith(".dlq")}

    seen: dict[str, list[str]] = defaultdict(list)  # seq → queues it was parked from
    for queue in queues:
        for headers in parked(channel, queue):
            tag = headers.get(SEQ)
            seen[tag.decode() if isinstance(tag, bytes) else tag].append(queue)
    connection.close()
    processed = processed_ids(fuzz, service)
    outcome = Counter()
    lost = []
    for seq, (queue, ids) in sent.items():
        if seen.get(seq) == [queue]:
            outcome["parked"] += 1
        elif seq not in seen and ids & processed:
            outcome["processed"] += 1
        else:
            lost.append((seq, queue, seen.get(seq)))
    outcome["lost"] = len(lost)
    fuzz.messages[service].update(outcome)
    fuzz.messages[service]["published"] += len(sent)
    assert not lost, f"{len(lost)} of {len(sent)} messages neither processed nor parked once: {lost[:10]}"
    assert not fuzz.processes_alive(), f"dead processes: {fuzz.processes_alive()}"
    assert json.dumps(dict(outcome))  # the report can carry it
