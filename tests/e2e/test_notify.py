"""What an applicant and a subscribing system get from a dossier's journey, counted where it lands:
the applicant's e-mails at the SMTP server and SMS at the gateway, in Vietnamese; a subscriber's
webhooks at its own endpoint, each signature verified with the ``standardwebhooks`` library; the
subscription managed through ``SubscriptionService`` with a stock grpcio client (health,
reflection, deliveries with attempts, redelivery from the event stream)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from motcua_dev.devstack import eventually
from motcua_dev.harness import JOURNEY, Platform, journeys_complete, sample_request, submit_all
from motcua_dev.mailbox import WebhookReceiver

from motcua.notify.v1 import notify_pb2, notify_pb2_grpc
from motcua.protobufs import timestamp

pytestmark = pytest.mark.e2e

SENT = "vn.motcua.notification.sent.v1"


def test_the_applicant_is_told_by_email_and_sms_and_a_subscriber_gets_signed_webhooks(platform: Platform):
    with grpc.insecure_channel(platform.notify_address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="motcua.notify.v1.SubscriptionService"), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        api = notify_pb2_grpc.SubscriptionServiceStub(channel)
        with WebhookReceiver() as receiver:
            created = api.CreateSubscription(notify_pb2.CreateSubscriptionRequest(
                request_id="e2e-1", url=receiver.url, event_types=["*"], areas=["ba-thuoc"],
                description="Nền tảng tích hợp dữ liệu tỉnh"), timeout=10)
            receiver.secrets = [created.secret]
            sid = created.subscription.subscription_id
            with pytest.raises(grpc.RpcError) as refused:
                api.CreateSubscription(notify_pb2.CreateSubscriptionRequest(
                    request_id="e2e-2", url="ftp://example.vn/", event_types=["*"], areas=["*"]), timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

            request = sample_request("ba-thuoc", 7001)
            request.applicant.phone = "0912345678"
            by_sms = sample_request("ba-thuoc", 7002)  # this applicant chose SMS only at submission
            by_sms.applicant.phone = "0987654321"
            by_sms.applicant.notify_channels.append("sms")
            answer, sms_answer = submit_all(platform.intake_address, [request, by_sms])
            code = answer.code
            expected = {code: {**JOURNEY, SENT: 6},  # received, result ready, returned × e-mail and SMS
                        sms_answer.code: {**JOURNEY, SENT: 3}}
            assert platform.events.wait_until(journeys_complete(expected), 180), platform.progress(set(expected))
            assert platform.mail.to(by_sms.applicant.email) == []
            assert len([m for m in platform.sms.messages if m["to"] == "0987654321"]) == 3

            # the applicant's messages, where they landed
            mails = platform.mail.to(request.applicant.email)
            assert sorted(str(m["Subject"]) for m in mails) == sorted([
                f"Hồ sơ {code} đã được tiếp nhận", f"Hồ sơ {code} đã có kết quả", f"Hồ sơ {code} đã trả kết quả"])
            received = next(m for m in mails if "tiếp nhận" in str(m["Subject"]))
            text = received.get_body(("plain",)).get_content()
            assert "Kính gửi Ông/Bà Công dân 7001" in text and "Cấp giấy phép xây dựng" in text
            assert " giờ " in text and "UBND huyện Bá Thước" in text
            sms = [m for m in platform.sms.messages if m["to"] == "0912345678"]
            assert len(sms) == 3 and all(code in m["text"] for m in sms)
            assert all(m["text"].isascii() for m in sms)  # unaccented for the gateway

            # every event of the dossier reached the subscriber once, verified
            ids = {e.id for e in platform.events.by_subject()[code]}
            assert eventually(lambda: ids <= set(receiver.ids()), 30), (len(ids), len(receiver.ids()))
            mine = [r for r in receiver.received if r["event"]["subject"] == code]
            assert len(mine) == len(ids) and receiver.rejected == 0
            assert {r["event"]["type"] for r in mine} >= {"vn.motcua.dossier.received.v1", SENT}

            # The receiver answered each POST; notify records "delivered" just after (and other
            # dossiers' or later events may still be on their way): this dossier's, once recorded.
            def recorded():
                listed = api.ListDeliveries(notify_pb2.ListDeliveriesRequest(subscription_id=sid, page_size=500),
                                            timeout=10).deliveries
                return [d for d in listed if d.event_id in ids]

            assert eventually(lambda: {d.status for d in recorded()} == {"delivered"}, 30), \
                [(d.event_type, d.status) for d in recorded()]
            deliveries = recorded()
            assert len(deliveries) == len(ids)
            assert all(d.attempts and d.attempts[-1].outcome == "accepted" for d in deliveries)

            # a subscriber that lost its data asks again: the same webhook-ids come again
            queued = api.RedeliverSince(notify_pb2.RedeliverSinceRequest(
                subscription_id=sid, since=timestamp(datetime.now(UTC) - timedelta(minutes=10))), timeout=60).queued
            assert queued >= len(ids)
            assert eventually(lambda: sum(1 for i in receiver.ids() if i in ids) >= 2 * len(ids), 30)
            test = api.SendTestEvent(notify_pb2.SendTestEventRequest(subscription_id=sid), timeout=10)
            assert eventually(lambda: test.event_id in receiver.ids(), 30)
            api.DeleteSubscription(notify_pb2.DeleteSubscriptionRequest(subscription_id=sid), timeout=10)

