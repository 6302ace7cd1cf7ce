"""Signing's worker process (nameko): consumes signing.<area>, signs in a pool of signing processes
(each holds the PKCS#11 session, its signers, the TSA client and the font for its life; the worker
waits on green pipes), relays its outbox."""

import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from motcua.messagebus import MessageBus  # noqa: E402
from motcua.objects import ObjectRef  # noqa: E402
from motcua.runtime import Infrastructure, WorkerRuntime  # noqa: E402
from motcua.worker import main  # noqa: E402
from signing.adapters.records import SigningRecord  # noqa: E402
from signing.adapters.signer_pool import InProcessSigner, SignerPool, engine_config  # noqa: E402
from signing.adapters.token import TokenKeys  # noqa: E402
from signing.application.sign_document import SignDocument  # noqa: E402
from signing.application.signing_work import SignDraft, SigningWork  # noqa: E402
from signing.config import SigningSettings  # noqa: E402
from signing.entrypoints.messages import INBOUND  # noqa: E402


def make_runtime(settings: SigningSettings) -> WorkerRuntime:
    infra = Infrastructure.connect(settings)
    infra.objects.ensure_bucket()
    config = engine_config(settings)
    # Fail at start, with the reason, when the token or the trusted roots cannot be opened (not on
    # the first dossier): the PIN file, the module, the token label, MOTCUA_TRUST_ROOTS.
    if not settings.tsa_url or settings.trust_roots is None:
        raise SystemExit("signing needs MOTCUA_TSA_URL (the RFC 3161 TSA) and MOTCUA_TRUST_ROOTS (the root CA "
                         "certificates): `make run` sets both for the development PKI")
    TokenKeys(config.pkcs11_module, config.pkcs11_token, config.pkcs11_pin_file).close()
    settings.trust_roots.read_bytes()
    signer = SignerPool(config, settings.signing_processes) if settings.signing_processes > 0 \
        else InProcessSigner(config)
    sign_document = SignDocument(
        object_reader=lambda ref: infra.objects.get(ObjectRef.from_dict(ref)),
        object_writer=lambda prefix, data, media_type: infra.objects.put_bytes(prefix, data, media_type).to_dict(),
        signer=signer)
    bus = MessageBus({SignDraft: SigningWork(infra.units_of_work(), sign_document, SigningRecord)})
    return WorkerRuntime(infra, "signing", INBOUND.dispatch(bus), [SigningRecord])


if __name__ == "__main__":
    sys.exit(main("signing", SigningSettings, make_runtime))
