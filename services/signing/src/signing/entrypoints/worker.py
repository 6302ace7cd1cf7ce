"""Signing's worker process (nameko): consumes signing.<area>, signs off the eventlet hub
(eventlet.tpool, since signing is CPU-bound), relays its outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from eventlet import tpool  # noqa: E402

from motcua.messagebus import MessageBus  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402
from signing.adapters.pdf import apply_signatures  # noqa: E402
from signing.adapters.pki import ensure_dev_pki  # noqa: E402
from signing.adapters.records import SigningRecord  # noqa: E402
from signing.application.sign_document import SignDocument  # noqa: E402
from signing.application.signing_work import SignDraft, SigningWork  # noqa: E402
from signing.config import SigningSettings  # noqa: E402
from signing.entrypoints.messages import INBOUND  # noqa: E402


def make_runtime(settings: SigningSettings) -> WorkerRuntime:
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    pki = ensure_dev_pki(settings.pki_dir)
    sign_document = SignDocument(
        object_reader=lambda ref: infra.objects.get(_ref(ref)),
        object_writer=lambda prefix, data, media_type: infra.objects.put_bytes(prefix, data, media_type).to_dict(),
        # Only the CPU-bound signing leaves the hub: the object store's green sockets stay on it.
        signer=lambda pdf, request: tpool.execute(apply_signatures, pdf, request, pki))
    bus = MessageBus({SignDraft: SigningWork(infra.units_of_work(), sign_document, pki.official_id, pki.seal_id)})
    return WorkerRuntime(infra, "signing", INBOUND.dispatch(bus), [SigningRecord])


def _ref(ref):
    from motcua.objects import ObjectRef

    return ObjectRef.from_dict(ref)


if __name__ == "__main__":
    sys.exit(main("signing", SigningSettings, make_runtime))
