"""A certificate's revocation status now, asked of the OCSP responder named in its AIA extension
(RFC 6960), for the operator's ``signing list``. Signing itself does not use this: pyHanko's
validation context fetches and embeds the revocation data of each signature (PAdES B-LT).

The answer is believed only when the responder signed it with the issuer's key or with a
certificate the issuer delegated OCSP signing to (EKU id-kp-OCSPSigning), for this certificate's
serial, with our nonce echoed when it echoes one. A responder that does not answer within the
timeout, or answers with an HTTP error, is ``unreachable``: not ``good``.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

GOOD, REVOKED, UNKNOWN, UNREACHABLE = "good", "revoked", "unknown", "unreachable"
MAX_RESPONSE = 256 * 1024


@dataclass(frozen=True)
class Revocation:
    """``state``: good, revoked, unknown (the responder does not know it, or no usable answer) or
    unreachable; ``detail`` says when and why in words."""

    state: str
    detail: str = ""
    revoked_at: datetime | None = None

    def __str__(self) -> str:
        return f"{self.state} ({self.detail})" if self.detail else self.state


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [d.access_location.value for d in aia
            if d.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(d.access_location, x509.UniformResourceIdentifier)]


def ocsp_status(cert: x509.Certificate, issuer: x509.Certificate | None, timeout: float) -> Revocation:
    """The status of ``cert`` from the first OCSP URL of its AIA, within ``timeout`` seconds."""
    urls = ocsp_urls(cert)
    if not urls:
        return Revocation(UNKNOWN, "no OCSP responder in the certificate's AIA")
    if issuer is None:
        return Revocation(UNKNOWN, "the issuer's certificate is not in the token")
    nonce = os.urandom(16)
    request = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
               .add_extension(x509.OCSPNonce(nonce), critical=False).build())
    url = urls[0]
    try:
        body = _post(url, request.public_bytes(serialization.Encoding.DER), timeout)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return Revocation(UNREACHABLE, f"{url}: {reason}")
    return _judge(body, cert, issuer, nonce, url)


def _post(url: str, der: bytes, timeout: float) -> bytes:
    req = urllib.request.Request(url, data=der, method="POST", headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310 - the certificate's own AIA URL
        body = response.read(MAX_RESPONSE + 1)
    if len(body) > MAX_RESPONSE:
        raise OSError(f"the answer exceeds {MAX_RESPONSE} bytes")
    return body


def _judge(body: bytes, cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes, url: str) -> Revocation:
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError:
        return Revocation(UNKNOWN, f"{url} answered something that is not an OCSP response")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return Revocation(UNKNOWN, f"the responder answered {response.response_status.name.lower()}")
    if response.serial_number != cert.serial_number:
        return Revocation(UNKNOWN, "the responder answered for another certificate")
    if not _signed_for(response, issuer):
        return Revocation(UNKNOWN, "the response is not signed by the issuer or its OCSP delegate")
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None  # responders may leave nonces out (pre-produced responses)
    if echoed is not None and echoed != nonce:
        return Revocation(UNKNOWN, "the response answers another request (nonce)")
    if response.certificate_status == ocsp.OCSPCertStatus.GOOD:
        return Revocation(GOOD)
    if response.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        at = response.revocation_time_utc
        reason = response.revocation_reason.name if response.revocation_reason else "unspecified"
        return Revocation(REVOKED, f"since {at:%Y-%m-%d %H:%M:%S} UTC, {reason}", revoked_at=at)
    return Revocation(UNKNOWN, "the responder does not know this certificate")


def _signed_for(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
    """Signed by the issuer itself, or by a responder certificate the issuer signed for OCSP."""
    if _verifies(issuer.public_key(), response.signature, response.tbs_response_bytes,
                 response.signature_hash_algorithm):
        return True
    for delegate in response.certificates:
        try:
            eku = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING not in eku or delegate.issuer != issuer.subject:
            continue
        try:
            delegate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if _verifies(delegate.public_key(), response.signature, response.tbs_response_bytes,
                     response.signature_hash_algorithm):
            return True
    return False


def _verifies(key, signature: bytes, data: bytes, algorithm) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True
