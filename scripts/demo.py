"""`make demo`: submit a sample dossier to the running platform (`make run`) and print its journey,
event by event, as an independent subscriber of `motcua.events` sees it, until it is archived.
The demo also plays the officials of every unit: through the RoutingService API it completes each
step as it comes (receive, assign, review, approve), has the leader approve the draft for signing
and the desk return the result. Once the result is signed it asks the SigningService to validate
it (a stock grpcio client), prints the report, stores the signed PDF under var/demo/ and shows what
poppler's pdfsig says of it.

The reviewer asks the applicant for a supplement (form 02) and the applicant supplies it through
IntakeService.SupplementDossier; the reviewer then holds the dossier while `make run`'s clock moves
to a minute past the review's deadline (development only), so routing's SLA sweep issues the
apology (form 04); the clock goes back once the dossier is archived (form 05 at the return). The
demo then reads the forms from the archive package, keeps them in var/demo/ and shows pdfsig's
verdict on each seal (the development root trusted), and asks RoutingService.GetRegister for the
receiving unit's form 06 of the reception day."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import subprocess
import sys
import time
from pathlib import Path

from motcua_dev.harness import (
    ARCHIVED,
    SAMPLE_PROCEDURES,
    EventCollector,
    OfficialsAtWork,
    active_step_deadline,
    back_from_the_applicant,
    package_forms,
    pdfsig,
    register_of_the_day,
    sample_request,
    sample_units,
    submit_all,
    supply_supplement,
)
from motcua_dev.mailbox import WebhookReceiver, read_mailbox, read_sms
from motcua_dev.pki import dev_nss_trust_store
from motcua_dev.platform import ClockControl

from motcua.events.v1 import events_pb2
from motcua.settings import PlatformSettings
from motcua.worktime import VN_TZ

VAR = Path(__file__).resolve().parent.parent / "var"

PAYLOADS = {f"vn.motcua.{name}.v1": cls for name, cls in {
    "dossier.received": events_pb2.DossierReceived, "dossier.assigned": events_pb2.DossierAssigned,
    "dossier.step_completed": events_pb2.StepCompleted,
    "dossier.signing_requested": events_pb2.SigningRequested, "document.signed": events_pb2.DocumentSigned,
    "dossier.result_ready": events_pb2.ResultReady, "dossier.returned": events_pb2.DossierReturned,
    "dossier.archived": events_pb2.DossierArchived, "notification.sent": events_pb2.NotificationSent,
    "notification.failed": events_pb2.NotificationFailed,
    "dossier.signing_failed": events_pb2.SigningFailed,
    "dossier.supplement_requested": events_pb2.SupplementRequested,
    "dossier.supplemented": events_pb2.DossierSupplemented, "dossier.apology_issued": events_pb2.ApologyIssued,
    "dossier.form_issued": events_pb2.FormIssued, "dossier.overdue": events_pb2.DossierOverdue,
    "dossier.due_soon": events_pb2.DossierDueSoon,
}.items()}
SHOWN = ("form", "scope", "late", "step", "role", "unit", "actor", "assignee", "signers", "level", "official_id",
         "seal_unit", "reason", "channel", "components", "manifest_sha256", "document_count")
SENT = "vn.motcua.notification.sent.v1"
SUPPLEMENT_REQUESTED = "vn.motcua.dossier.supplement_requested.v1"
SUPPLEMENTED = "vn.motcua.dossier.supplemented.v1"
APOLOGY = "vn.motcua.dossier.apology_issued.v1"
# what the reviewer asks the applicant to add (form 02 lists it)
SUPPLEMENT = ("Bản vẽ thiết kế có chữ ký của chủ đầu tư (bản bổ sung)",)
ROOT = VAR.parent
SIGNED = "vn.motcua.document.signed.v1"


def show_signed(code: str, event, signing_address: str) -> None:
    """The SigningService's report on the signed result, and pdfsig's view of the PDF."""
    import grpc

    from motcua.objects import ObjectRef, ObjectStore
    from motcua.protobufs import document_ref_dict
    from motcua.signing.v1 import signing_pb2, signing_pb2_grpc

    signed = events_pb2.DocumentSigned.FromString(event.body)
    with grpc.insecure_channel(signing_address) as channel:
        report = signing_pb2_grpc.SigningServiceStub(channel).ValidateDocument(
            iter([signing_pb2.ValidateDocumentRequest(stored=signing_pb2.StoredDocument(code=code))]), timeout=60)
    print(f"SigningService.ValidateDocument({code}): {signing_pb2.Verdict.Name(report.verdict)}")
    for s in report.signatures:
        print(f"  {s.field_name:<13} {s.signer} — {s.subject}; issuer {s.issuer}; {s.level}; "
              f"timestamp {s.timestamp.ToDatetime():%Y-%m-%d %H:%M:%S}Z; intact={s.intact} trusted={s.trusted} "
              f"revocation={s.revocation} modifications={s.modifications}")
    data = ObjectStore(PlatformSettings.load()).get(ObjectRef.from_dict(document_ref_dict(signed.signed)))
    path = Path("var/demo") / f"{code}.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"signed result stored in {path}")
    if shutil.which("pdfsig"):
        command = ["pdfsig", str(path)]
        if shutil.which("certutil") and (VAR / "pki" / "root.pem").exists():  # trust the dev root, as an agency would
            command[1:1] = ["-nssdir", dev_nss_trust_store(VAR / "pki", VAR / "demo" / "nss")]
        out = subprocess.run(command, capture_output=True, text=True).stdout
        print("pdfsig: " + "\n        ".join(line for line in out.splitlines()
                                           if "Common Name" in line or "Validation" in line or "Field" in line))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--address", default="127.0.0.1:50051", help="intake gRPC API")
    parser.add_argument("--routing", default="127.0.0.1:50052", help="routing gRPC API (the officials' client)")
    parser.add_argument("--signing", default="127.0.0.1:50053", help="signing gRPC API (the trust service)")
    parser.add_argument("--archive", default="127.0.0.1:50055", help="archive gRPC API")
    parser.add_argument("--unit", default="ba-thuoc", help="the receiving unit, e.g. bim-son, phuong-ba-dinh (a ward)")
    parser.add_argument("--procedure", default="1.004616", choices=sorted(SAMPLE_PROCEDURES),
                        help="a sample procedure: 1.004616 district, 1.001193 and 1.001776 commune, "
                        "1.004227 province (at van-phong-dang-ky-dat-dai)")
    parser.add_argument("--notify", default="127.0.0.1:50054", help="notify's SubscriptionService (webhooks)")
    parser.add_argument("--var", type=Path, default=VAR, help="where the local SMTP server and SMS gateway write")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    settings = PlatformSettings.load()
    events = EventCollector(settings.amqp_uri).start()  # subscribed before submitting: sees all
    subscriber = Subscriber(args.notify).start()  # a system subscribed to webhooks, verifying each
    officials = OfficialsAtWork(args.routing, list(sample_units()), interval=0.3).start()
    request = sample_request(args.unit, int(time.time()) % 10**9, procedure_code=args.procedure)
    request.applicant.phone = "0912345678"  # the applicant is told by e-mail and by SMS
    (answer,) = submit_all(args.address, [request])
    officials.supplements[answer.code] = SUPPLEMENT  # the reviewer asks for it before completing
    print(f"submitted dossier {answer.code} (id {answer.dossier_id})")
    late = LateReview(officials, answer.code, args)
    try:
        return follow(args, settings, events, subscriber, officials, request, answer, late)
    finally:
        late.restore_clock(wait=False)


def follow(args, settings, events, subscriber, officials, request, answer, late) -> int:
    """Print the journey as it comes, play the applicant and the late review, then the reports."""
    shown = 0
    archived_by = float("inf")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        journey = [e for e in events.by_subject().get(answer.code, [])]
        for event in journey[shown:]:
            payload = PAYLOADS[event.type]().FromString(event.body) if event.type in PAYLOADS else None
            details = ", ".join(f"{f}={getattr(payload, f)!s}" for f in SHOWN
                                if payload is not None and f in payload.DESCRIPTOR.fields_by_name
                                and payload.DESCRIPTOR.fields_by_name[f].message_type is None  # documents: not shown
                                and getattr(payload, f))
            print(f"  {event.headers.get('cloudEvents:time', '')[11:23]}  {event.type:<42} "
                  f"key={event.routing_key:<32} {details}")
        shown = len(journey)
        late.step({e.type for e in journey})
        told = sum(1 for e in journey if e.type == SENT)
        if any(e.type == ARCHIVED for e in journey) and (told >= 10 or time.monotonic() > archived_by + 10):
            events.stop()
            officials.stop()
            print(f"dossier {answer.code} is archived")
            late.restore_clock(wait=True)
            signed = [e for e in journey if e.type == SIGNED]
            if signed:
                show_signed(answer.code, signed[0], args.signing)
            show_messages(request.applicant.email, request.applicant.phone, args.var)
            subscriber.show(answer.code)
            return show_archive(args.archive, answer.code, settings) or show_forms(args, answer)
        if archived_by == float("inf") and any(e.type == ARCHIVED for e in journey):
            archived_by = time.monotonic()  # then a few seconds for the last notifications
        time.sleep(0.2)
    events.stop()
    officials.stop()
    subscriber.stop()
    print(f"officials: acted {dict(officials.acted)}, last errors {officials.errors[-3:]}", file=sys.stderr)
    print(f"dossier {answer.code} was not archived within {args.timeout:.0f}s", file=sys.stderr)
    return 1


class LateReview:
    """Form 04 for real: the reviewer holds the dossier once its applicant has supplemented it,
    and ``make run``'s clock moves to a minute past the review's deadline (``ClockControl``: the
    processes that read the clock restart with MOTCUA_CLOCK_OFFSET_S), so the review is late by
    the calendar and routing's SLA sweep issues the apology with a new appointment, before the
    appointment it replaces; then the reviewer goes on. The clock goes back to the real time once
    the dossier is archived."""

    def __init__(self, officials: OfficialsAtWork, code: str, args: argparse.Namespace):
        self.officials, self.code, self.args = officials, code, args
        self.clock = ClockControl.of(args.var)
        self.state = "asking"
        self.asked_at = 0.0

    def step(self, seen: set[str]) -> None:
        if self.state == "asking" and SUPPLEMENT_REQUESTED in seen:
            self.officials.held.add(self.code)  # the review, once back from the applicant, waits
            dossier = supply_supplement(self.args.address, self.code, self.args.procedure)
            print(f"  (the applicant supplements {self.code} through IntakeService.SupplementDossier: "
                  f"status {dossier.status}, {len(dossier.documents)} documents; the reviewer holds it)")
            self.state = "supplied"
        elif self.state == "supplied" and SUPPLEMENTED in seen:
            deadline = active_step_deadline(self.args.routing, self.code, back_from_the_applicant)
            late = deadline + dt.timedelta(minutes=1)
            print(f"  (make run's clock moves to {late.astimezone(VN_TZ):%H:%M %d/%m/%Y}, a minute past the review's "
                  f"deadline, development only; routing's SLA sweep looks every second)")
            self.clock.request((late - dt.datetime.now(dt.UTC)).total_seconds())
            self.state, self.asked_at = "late", time.monotonic()
        elif self.state == "late" and APOLOGY in seen:
            print("  (the apology is issued; the reviewer goes on)")
            self.release()
        elif self.state == "late" and self.clock.applied() is None and time.monotonic() > self.asked_at + 150:
            print("  (make run did not move its clock: started before `make run` had its clock control? "
                  "the review goes on without an apology)")
            self.release()

    def release(self) -> None:
        self.officials.held.discard(self.code)
        self.state = "released"

    def restore_clock(self, wait: bool) -> None:
        """Back to the real time (once); with ``wait``, until make run has restarted the processes."""
        if self.asked_at and self.clock.applied() != 0:
            print("  (make run's clock goes back to the real time)")
            self.clock.request(0)
            self.asked_at = 0.0
            deadline = time.monotonic() + 150
            while wait and self.clock.applied() is None and time.monotonic() < deadline:
                time.sleep(0.5)


class Subscriber:
    """The provincial data platform as a webhook subscriber: a receiver on this machine that
    verifies every delivery with the standardwebhooks library, subscribed through notify's
    SubscriptionService for the demo's duration."""

    def __init__(self, address: str):
        self.address = address
        self.receiver = WebhookReceiver()
        self.subscription = ""
        self.error = ""

    def start(self) -> Subscriber:
        import grpc

        from motcua.notify.v1 import notify_pb2, notify_pb2_grpc

        self.receiver.start()
        try:
            with grpc.insecure_channel(self.address) as channel:
                created = notify_pb2_grpc.SubscriptionServiceStub(channel).CreateSubscription(
                    notify_pb2.CreateSubscriptionRequest(
                        request_id=f"demo-{time.time_ns()}", url=self.receiver.url, event_types=["*"], areas=["*"],
                        description="make demo: the provincial data platform"), timeout=10)
        except grpc.RpcError as error:
            self.error = f"{error.code().name}: {error.details()}"
            return self
        self.receiver.secrets = [created.secret]
        self.subscription = created.subscription.subscription_id
        return self

    def stop(self) -> None:
        if self.subscription:
            import grpc

            from motcua.notify.v1 import notify_pb2, notify_pb2_grpc

            with grpc.insecure_channel(self.address) as channel, contextlib.suppress(grpc.RpcError):
                notify_pb2_grpc.SubscriptionServiceStub(channel).DeleteSubscription(
                    notify_pb2.DeleteSubscriptionRequest(subscription_id=self.subscription), timeout=10)
            self.subscription = ""
        self.receiver.stop()

    def show(self, code: str) -> None:
        time.sleep(1.5)  # the last events' webhooks
        mine = [r for r in self.receiver.received if r["event"].get("subject") == code]
        print(f"\nthe subscriber's webhooks ({self.receiver.url}, every signature verified with standardwebhooks):")
        if self.error:
            print(f"  (could not subscribe at {self.address}: {self.error})")
        for r in mine:
            print(f"  ── webhook-id {r['id']}  {r['event']['type']}")
        print(f"  {len(mine)} verified, {self.receiver.rejected} rejected")
        self.stop()


def show_messages(email: str, phone: str, var: Path = VAR) -> None:
    """What the applicant got, as the local SMTP server and SMS gateway of `make run` received it."""
    mails = read_mailbox(var / "mail", email)
    print(f"\nthe applicant's e-mails ({email}, from var/mail/):")
    for message in mails:
        text = message.get_body(("plain",)).get_content().strip()
        print(f"  ── {message['Date']}  {message['Subject']}")
        print("\n".join(f"     {line}" for line in text.splitlines()))
    texts = read_sms(var / "sms", phone)
    print(f"\nthe applicant's SMS ({phone}, from var/sms/sms.jsonl):")
    for sms in texts:
        print(f"  ── {sms.get('from')}: {sms.get('text')}")
    if not mails and not texts:
        print("  (none: is `make run`'s local SMTP server and SMS gateway running? see var/log/mailbox.log)")


def show_archive(address: str, code: str, settings: PlatformSettings) -> int:
    """The package as the archive API tells it: two locked, verified copies and the ledger entry;
    then a delete of the primary copy's version, which the S3 server refuses."""
    import grpc
    from minio.error import S3Error

    from motcua.archive.v1 import archive_pb2, archive_pb2_grpc
    from motcua.objects import ObjectStore

    with grpc.insecure_channel(address) as channel:
        package = archive_pb2_grpc.ArchiveServiceStub(channel).GetPackage(
            archive_pb2.GetPackageRequest(code=code), timeout=10).package
    until = package.retain_until.ToDatetime().date().isoformat()
    print(f"  package sha256={package.package_sha256[:16]}… {package.package_size} bytes, retention "
          f"{package.retention}, {package.lock_mode} lock until {until}")
    for copy in package.copies:
        print(f"  copy {copy.name:<8} s3://{copy.bucket}/{copy.key} version {copy.version_id}")
    print(f"  ledger entry {package.ledger.seq} hash {package.ledger.hash[:16]}… "
          f"(previous {package.ledger.prev_hash[:16]}…); fixity: {package.fixity.state}")
    primary = package.copies[0]
    store = ObjectStore(settings, bucket=primary.bucket)
    try:
        store.client.remove_object(primary.bucket, primary.key, version_id=primary.version_id)
        print("  DELETE of the package version was accepted: the bucket is not write-once!", file=sys.stderr)
        return 1
    except S3Error as exc:
        print(f"  DELETE of the package version refused by the S3 server: {exc.code}")
    print("  check the ledger: .venv/bin/python -m archive verify-ledger")
    return 0


FORM_TITLES = {"01": "receipt and appointment", "02": "request to supplement", "03": "refusal",
               "04": "apology with a new appointment", "05": "processing control slip", "06": "register",
               "": "notice that processing stopped"}


def show_forms(args: argparse.Namespace, answer) -> int:
    """The one-stop desk's forms (Circular 01/2018/TT-VPCP) as the archive package holds them, and
    the receiving unit's register (form 06) of the day: each kept in var/demo/ and checked by
    pdfsig, with the development root trusted in an NSS database of the demo's own."""
    from motcua.protobufs import datetime_of
    from motcua.worktime import VN_TZ

    code, day = answer.code, datetime_of(answer.received_at).astimezone(VN_TZ).date()
    out = Path("var/demo")
    nss = dev_nss_trust_store(ROOT / "var" / "pki", out / "nss")
    print(f"\nForms of {code} in its archive package (data/forms/ of the bag, named by its Decree 30 metadata):")
    forms = sorted(package_forms(args.archive, code), key=lambda f: f.number)
    for form in forms:
        path = out / f"{code}-form-{form.number or 'dung'}.pdf"
        path.write_bytes(form.data)
        print(f"  form {form.number or '--'} {FORM_TITLES.get(form.number, ''):<32} {form.path}  → {path}")
        show_seal(path, nss)
    numbers = {f.number for f in forms}
    rows, pdf = register_of_the_day(args.routing, args.unit, day)
    path = out / f"register-{args.unit}-{day:%Y%m%d}.pdf"
    path.write_bytes(pdf)
    listed = "lists" if any(r.code == code for r in rows) else "does NOT list"
    print(f"\nForm 06, the register of {args.unit} for {day:%d/%m/%Y} (RoutingService.GetRegister, PDF): {len(rows)} "
          f"dossiers, {listed} {code}  → {path}")
    show_seal(path, nss)
    return 0 if {"01", "02", "04", "05"} <= numbers and listed == "lists" else 1


def show_seal(path: Path, nss: str) -> None:
    for sig in pdfsig(path, "-nssdir", nss):
        print(f"      pdfsig: {sig.get('Signature Field Name', '?')} by {sig.get('Signer Certificate Common Name')}: "
              f"{sig.get('Signature Validation')} {sig.get('Certificate Validation')} "
              f"({sig.get('Signature Type')}, signed {sig.get('Signing Time')})")


if __name__ == "__main__":
    sys.exit(main())
