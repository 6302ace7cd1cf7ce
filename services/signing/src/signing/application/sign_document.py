"""Use case: sign a draft result document (the official's signature, then the organisation seal).

Ports, all plain callables so the wiring can pass bound methods, lambdas or ``eventlet.tpool``
wrappers:

* ``read(ref) -> bytes`` fetches the draft named by ``{key, sha256, size, media_type}`` and verifies
  its size and SHA-256 (``motcua.objects.ObjectStore.get``);
* ``sign(pdf, request) -> SignedPdf`` applies the signatures (the worker's pool of signing
  processes, :mod:`signing.adapters.signer_pool`); raises ``SigningRefused`` when a signer has no
  enrolled, valid certificate (before anything is signed);
* ``write(prefix, data, media_type) -> ref`` stores the signed bytes content-addressed and returns
  their reference dict (``ObjectStore.put_bytes(...).to_dict()``).

Idempotency (a request id answered once) and messaging belong to the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from signing.domain import PDF_MEDIA_TYPE, SignedDocument, SignedPdf, SigningRequest, check_pdf_bytes

Read = Callable[[dict[str, Any]], bytes]
Sign = Callable[[bytes, SigningRequest], SignedPdf]
Write = Callable[[str, bytes, str], Mapping[str, Any]]

SIGNED_PREFIX = "signing"  # objects go to signing/<dossier code>/<sha256>


class SignDocument:
    def __init__(self, object_reader: Read, object_writer: Write, signer: Sign):
        self._read = object_reader
        self._write = object_writer
        self._sign = signer

    def __call__(self, request: SigningRequest) -> SignedDocument:
        draft = self._read(dict(request.document))
        check_pdf_bytes(draft)  # by content; the signer also checks that it parses
        signed = self._sign(draft, request)
        sha256 = hashlib.sha256(signed.data).hexdigest()
        ref = self._write(f"{SIGNED_PREFIX}/{request.dossier_code}", signed.data, PDF_MEDIA_TYPE)
        return SignedDocument(
            request_id=request.request_id,
            dossier_code=request.dossier_code,
            area=request.area,
            source=dict(request.document),
            document=dict(ref),
            sha256=sha256,
            size=len(signed.data),
            signatures=signed.signatures,
            level=signed.level,
        )
