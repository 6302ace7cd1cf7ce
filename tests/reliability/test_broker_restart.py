"""RabbitMQ stopped and started again while 36 dossiers flow, on a private broker node of the
test's own (the shared broker is never touched): nothing accepted is lost, nothing is done twice,
no process dies, and the callers only ever see OK or UNAVAILABLE."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest
from motcua_dev.harness import SAMPLE_PROCEDURES, Platform, journey, journeys_complete, running_platform, sample_request
from motcua_dev.testing import PrivateRabbitMQ, S3Endpoint, private_rabbitmq

from motcua.operate import read_events

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1800)]

# (receiving unit, procedure): two districts' own procedure and a ward of Bỉm Sơn's.
SUBMISSIONS = (("bim-son", "1.004616"), ("ba-thuoc", "1.004616"), ("phuong-ba-dinh", "1.001193"))
# Submissions: before the stop, in flight while it stops, while the broker is away, after its start.
BEFORE, STOPPING, DURING, AFTER = 9, 9, 9, 9
OUTAGE_S = 10
CLIENT_THREADS = 6


@dataclass
class Call:
    request: object
    procedure: str
    code: str = ""  # the dossier code answered
    id: str = ""
    status: grpc.StatusCode = grpc.StatusCode.OK
    details: str = ""
    broker_down: bool = False  # the broker was stopped for the whole call


class Desk:
    """Agencies' clients submitting from several threads, recording every answer."""

    def __init__(self, address: str, broker: PrivateRabbitMQ):
        self.channel = grpc.insecure_channel(address)
        from motcua.intake.v1 import intake_pb2_grpc

        self.stub = intake_pb2_grpc.IntakeServiceStub(self.channel)
        self.broker = broker
        self.down = threading.Event()  # set between the broker's stop and its start

    def submit(self, call: Call) -> Call:
        down_before = self.down.is_set()
        try:
            answer = self.stub.SubmitDossier(call.request, timeout=120)
            call.code, call.id, call.status, call.details = answer.code, answer.dossier_id, grpc.StatusCode.OK, ""
        except grpc.RpcError as error:
            call.status, call.details = error.code(), error.details() or ""
        call.broker_down = down_before and self.down.is_set()
        return call


def test_broker_stopped_and_started_while_dossiers_flow(tmp_path, s3_endpoint: S3Endpoint):
    calls = []
    for n in range(BEFORE + STOPPING + DURING + AFTER):
        unit, procedure = SUBMISSIONS[n % len(SUBMISSIONS)]
        documents = len(SAMPLE_PROCEDURES[procedure][0])  # every required component
        calls.append(Call(sample_request(unit, n, documents=documents, procedure_code=procedure), procedure))
    before, stopping, during, after = (calls[:BEFORE], calls[BEFORE:BEFORE + STOPPING],
                                       calls[BEFORE + STOPPING:-AFTER], calls[-AFTER:])
    with private_rabbitmq(tmp_path / "rabbit") as broker, running_platform(
            tmp_path / "platform", broker.amqp_uri, s3_endpoint.env(f"broker-{uuid.uuid4().hex[:10]}"),
            vhost=False, durable_events=True) as platform:
        desk = Desk(platform.intake_address, broker)
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(pool.map(desk.submit, before))
            # The broker stops while the next calls are in flight and the workers are busy with
            # the first dossiers; more calls are made while it is away.
            in_flight = [pool.submit(desk.submit, call) for call in stopping]
            broker.stop()
            stopped_at = datetime.now(UTC)
            desk.down.set()
            list(pool.map(desk.submit, during))
            for future in in_flight:
                future.result()
            time.sleep(OUTAGE_S)  # the workers' relays and consumers keep trying meanwhile
            desk.down.clear()
            broker.start()
            started_at = datetime.now(UTC)
            list(pool.map(desk.submit, after))
        outcomes = Counter((c.status.name, c.broker_down) for c in calls)
        print(f"\nanswers (status, broker down for the whole call): {dict(outcomes)}")
        assert {c.status for c in calls} <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, \
            [(c.status, c.details) for c in calls if c.status not in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE)]
        assert all(c.broker_down for c in during), "calls meant for the outage were not made in it"

        # Retries after the broker is back, with the same request ids: the UNAVAILABLE ones are
        # accepted now, and a call that was accepted gets its first answer again.
        first = {c.request.request_id: (c.id, c.code) for c in calls if c.status == grpc.StatusCode.OK}
        unavailable = sum(c.status == grpc.StatusCode.UNAVAILABLE for c in calls)
        rounds = 0
        while rounds < 5:
            rounds += 1
            retried = [c for c in calls if c.status != grpc.StatusCode.OK or c.request.request_id in first]
            for call in retried:
                call.broker_down = False
            with ThreadPoolExecutor(CLIENT_THREADS) as pool:
                list(pool.map(desk.submit, retried))
            if all(c.status == grpc.StatusCode.OK for c in calls):
                break
        print(f"UNAVAILABLE at first: {unavailable}; rounds of retries: {rounds}")
        assert all(c.status == grpc.StatusCode.OK for c in calls), \
            [(c.status, c.details) for c in calls if c.status != grpc.StatusCode.OK]
        assert all((c.id, c.code) == first[c.request.request_id] for c in calls
                   if c.request.request_id in first), "a retried request got another answer than its first"
        expected = {c.code: journey(SAMPLE_PROCEDURES[c.procedure][1]) for c in calls}
        assert len(expected) == len(calls)

        complete = journeys_complete(expected)
        dead = lambda: [name for name in platform.stack.specs if not platform.stack.alive(name)]  # noqa: E731
        platform.events.wait_until(lambda seen: complete(seen) or bool(dead()), timeout=900)
        assert not dead(), "\n".join(f"{name} died\n{platform.stack.tail(name, 30)}" for name in dead())
        assert complete(platform.events.seen()), platform.progress(set(expected))
        desk.channel.close()
        assert_exactly_once(platform, expected)
        assert platform.events.reconnects >= 1, "the event collector never lost its connection"

        # The replay stream, read from its start: nothing in it the collector did not see. It
        # lacks events published in the first fraction of a second after the broker's start:
        # RabbitMQ 3.10.8 (Debian) confirms them and routes them to the classic queues (every
        # service and the collector got them) before the stream's writer is up again, which drops
        # them (reproduced with a bare pika publisher). Reported, not asserted.
        seen = platform.events.seen()
        collected = {e.id: e for e in seen if e.subject in expected}
        streamed = Counter(e.id for e in read_events(broker.amqp_uri, "first", limit=100_000, idle_s=5)
                           if e.subject in expected)
        phase = {c.code: name for name, part in (("before", before), ("stopping", stopping),
                                                 ("during", during), ("after", after)) for c in part}
        lacking = set(collected) - set(streamed)
        missing = Counter((collected[i].type, phase[collected[i].subject]) for i in lacking)
        times = sorted(collected[i].headers.get("cloudEvents:time", "") for i in lacking)
        print(f"broker stopped at {stopped_at:%H:%M:%S.%f}, started at {started_at:%H:%M:%S.%f}; "
              f"the events the stream lacks were made from {times[:1]} to {times[-1:]}")
        print(f"dossiers archived: {len(expected)}; distinct events: {len(collected)}; extra copies at "
              f"the collector: {len(seen) - len({e.id for e in seen})}, in the stream: "
              f"{sum(streamed.values()) - len(streamed)}; collector reconnects: {platform.events.reconnects}; "
              f"events the stream lacks (type, dossier submitted): {dict(missing)}")
        assert set(streamed) <= set(collected), "the stream holds events nobody subscribed saw"


def assert_exactly_once(platform: Platform, expected: dict[str, dict[str, int]]) -> None:
    from archive.adapters.records import LedgerRecord
    from intake.adapters.records import DossierRecord
    from routing.adapters.instances import InstanceRecord

    for code, wanted in expected.items():
        assert platform.events.distinct_types(code) == wanted, code
        assert platform.count("archive", LedgerRecord, {"code": code}) == 1, code
        assert platform.count("routing", InstanceRecord, {"code": code}) == 1, code
        assert platform.count("intake", DossierRecord, {"code": code}) == 1, code
    assert platform.count("intake", DossierRecord) == len(expected)
