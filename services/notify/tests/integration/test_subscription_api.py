"""SubscriptionService behind mutual TLS and an access list (a grpcio server built by build_server,
as notify's api builds it; stock grpcio clients with certificates of a test CA), on both store
backends, delivering to a real receiver that verifies every signature with ``standardwebhooks``;
and the notices that wait for their dossier's reception, on both backends too."""

from __future__ import annotations

import grpc
import pytest
from motcua_dev.mailbox import WebhookReceiver
from motcua_dev.testing import MutualTlsPki, RecordingPublisher

from motcua.access import AccessList
from motcua.events.v1 import events_pb2
from motcua.grpcsupport import ServerTls, build_server
from motcua.messaging.envelope import build_event
from motcua.messaging.outbox import Outbox
from motcua.notify.v1 import notify_pb2, notify_pb2_grpc
from motcua.unit_of_work import UnitsOfWork
from notify.adapters.webhooks import StandardWebhookSender, UrlPolicy, cloudevent_json
from notify.application.webhooks import Webhooks, WebhookSettings
from notify.entrypoints.api import SERVICE_NAME, SubscriptionServicer
from notify.entrypoints.bootstrap import WEBHOOK_SCHEMAS

pytestmark = pytest.mark.integration

ACCESS = {"agencies": {
    "nen-tang-tich-hop": {"methods": [f"{SERVICE_NAME}/*"], "areas": ["*"]},
    "ubnd-thi-xa-bim-son": {"methods": [f"{SERVICE_NAME}/*"], "areas": ["bim-son"]},
    "so-tu-phap": {"methods": ["motcua.intake.v1.IntakeService/*"], "areas": ["*"]},
}}


@pytest.fixture(scope="module")
def pki():
    return MutualTlsPki.create(tuple(ACCESS["agencies"]))


@pytest.fixture
def edge(store, pki):
    hooks = Webhooks(UnitsOfWork(store, Outbox(RecordingPublisher())), WEBHOOK_SCHEMAS,
                     StandardWebhookSender(timeout_s=5), UrlPolicy(allow_http=True, allow_private=True),
                     cloudevent_json, WebhookSettings())
    servicer = SubscriptionServicer(hooks)
    server, port, _ = build_server(
        [SERVICE_NAME], lambda s: notify_pb2_grpc.add_SubscriptionServiceServicer_to_server(servicer, s),
        "127.0.0.1", 0, reflection_on=False, workers=4,
        tls=ServerTls(pki.server_cert, pki.server_key, pki.ca), access_list=AccessList.from_dict(ACCESS))
    server.start()
    yield hooks, port
    server.stop(0)


def client(pki, port: int, agency: str | None):
    if agency is None:
        credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca)
    else:
        cert, key = pki.clients[agency]
        credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca, private_key=key, certificate_chain=cert)
    channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials,
                                  options=[("grpc.ssl_target_name_override", "localhost")])
    return channel, notify_pb2_grpc.SubscriptionServiceStub(channel)


def code_of(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_each_agency_owns_its_subscriptions_within_its_areas_and_gets_signed_deliveries(edge, pki):
    hooks, port = edge
    platform_channel, platform = client(pki, port, "nen-tang-tich-hop")
    district_channel, district = client(pki, port, "ubnd-thi-xa-bim-son")
    with platform_channel, district_channel, WebhookReceiver() as receiver:
        created = platform.CreateSubscription(notify_pb2.CreateSubscriptionRequest(
            request_id="r1", url=receiver.url, event_types=["*"], areas=["*"]), timeout=10)
        receiver.secrets = [created.secret]
        sid = created.subscription.subscription_id
        assert created.subscription.owner == "nen-tang-tich-hop"

        def create(areas):
            return lambda: district.CreateSubscription(notify_pb2.CreateSubscriptionRequest(
                request_id=f"d-{areas}", url=receiver.url, event_types=["dossier.received"], areas=areas), timeout=10)
        assert code_of(create(["*"])) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(create(["ba-thuoc"])) == grpc.StatusCode.PERMISSION_DENIED
        mine = district.CreateSubscription(notify_pb2.CreateSubscriptionRequest(
            request_id="d-own", url=receiver.url, event_types=["dossier.received"], areas=["bim-son"]), timeout=10)
        receiver.secrets.append(mine.secret)  # the receiver serves both subscribers
        assert code_of(lambda: district.GetSubscription(
            notify_pb2.GetSubscriptionRequest(subscription_id=sid), timeout=10)) == grpc.StatusCode.NOT_FOUND
        assert code_of(lambda: district.DeleteSubscription(
            notify_pb2.DeleteSubscriptionRequest(subscription_id=sid), timeout=10)) == grpc.StatusCode.NOT_FOUND
        assert len(district.ListSubscriptions(notify_pb2.ListSubscriptionsRequest(), timeout=10).subscriptions) == 1
        for agency in ("so-tu-phap", None):
            channel, stub = client(pki, port, agency)
            with channel:
                request = notify_pb2.ListSubscriptionsRequest()
                assert code_of(lambda s=stub, r=request: s.ListSubscriptions(r, timeout=10)) in (
                    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE)

        # both subscriptions get a bim-son reception, verified at the receiver; redelivery keeps the id
        event = build_event(name="dossier.received", data=events_pb2.DossierReceived(code="C-1", area="bim-son"),
                            source="/motcua/intake", subject="C-1", area="bim-son")
        assert hooks.fan_out(event) == 2
        hooks.deliver_due(wait=True)
        assert receiver.ids() == [event.id, event.id] and receiver.rejected == 0
        deliveries = platform.ListDeliveries(notify_pb2.ListDeliveriesRequest(subscription_id=sid), timeout=10)
        (delivery,) = deliveries.deliveries
        assert delivery.status == "delivered" and delivery.attempts[0].response.startswith("200")
        rotated = platform.RotateSecret(notify_pb2.RotateSecretRequest(subscription_id=sid), timeout=10)
        receiver.secrets = [rotated.secret]
        test = platform.SendTestEvent(notify_pb2.SendTestEventRequest(subscription_id=sid), timeout=10)
        hooks.deliver_due(wait=True)
        assert receiver.ids()[-1] == test.event_id and receiver.rejected == 0


def test_notices_wait_for_their_dossier_on_both_stores(store):
    from notify.adapters.templates import JinjaRenderer
    from notify.application.notifying import DeliverySettings, Notifier, NotifyApplicant, RememberApplicant
    from notify.entrypoints.bootstrap import SCHEMAS

    class Channel:
        def __init__(self):
            self.sent = []

        def send(self, message):
            self.sent.append(message)
            return "250"

    class Names:
        def procedure_name(self, code):
            return "Thủ tục"

        def unit_name(self, slug):
            return "UBND"

    email = Channel()
    notifier = Notifier(UnitsOfWork(store, Outbox(RecordingPublisher())), SCHEMAS, {"email": email}, JinjaRenderer(),
                        Names(), DeliverySettings(schedules={}))
    later = NotifyApplicant(event_id="e-2", event_type="vn.motcua.dossier.result_ready.v1",
                            event_name="dossier.result_ready", code="C-1", area="bim-son",
                            facts={"ready_at": "2026-05-04T09:00:00+00:00"})
    notifier.notify(later)
    notifier.notify(later)
    first = NotifyApplicant(event_id="e-1", event_type="vn.motcua.dossier.received.v1",
                            event_name="dossier.received", code="C-1", area="bim-son")
    notifier.remember(RememberApplicant(code="C-1", area="bim-son", receiving_unit="bim-son", full_name="An",
                                        email="an@example.vn", phone="", then=first, procedure_code="1.004616",
                                        received_at="2026-05-04T02:00:00+00:00",
                                        due_at="2026-05-06T09:00:00+00:00"))
    notifications = store.collection(SCHEMAS.notifications).find({"code": "C-1"})
    assert len(notifications) == 2
    from notify.application.notifying import DeliverNotification

    for doc in notifications:
        notifier.deliver(DeliverNotification(doc["_id"]))
    assert sorted(m.subject for m in email.sent) == ["Hồ sơ C-1 đã có kết quả", "Hồ sơ C-1 đã được tiếp nhận"]
    assert store.collection(SCHEMAS.waiting).count({"code": "C-1"}) == 0
    assert notifier.release_waiting() == 0  # the timer's query runs on this backend too
