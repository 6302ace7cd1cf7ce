"""The key source of the signing worker (the :class:`signing.adapters.pdf.KeySource` port) over a
PKCS#11 token, the CA's HTTP services (OCSP, CRL, RFC 3161 TSA) and the trusted roots; and
enrollment: a key generated in the token, its certificate issued by the CA, stored in the token.

Made once per process (the worker's pool processes each make one at start): the token session,
the signers (per certificate), the TSA client, the trust roots and the stamp font are reused for
every document.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from motcua.errors import InvalidArgument, NotFound, Unavailable
from signing.adapters.pdf import SignerIdentity
from signing.adapters.revocation import Revocation, ocsp_status
from signing.adapters.token import OFFICIAL_PREFIX, SEAL_PREFIX, Enrolled, TokenKeys, key_label
from signing.domain import SignerRef, SignerRole, SigningRefused

CA_PREFIX = "ca:"
WHO = {SignerRole.PERSONAL: "official", SignerRole.SEAL: "unit"}


def load_pem_certs(data: bytes) -> list[asn1_x509.Certificate]:
    if pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _t, _h, der in pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class TokenKeySource:
    """Signers from the token, timestamps from the TSA at ``tsa_url``, revocation data fetched from
    the URLs in the certificates (PAdES B-LT; B-LTA when ``lta``)."""

    def __init__(self, keys: TokenKeys, trust_roots_pem: bytes, tsa_url: str | None, *, lta: bool = False,
                 timeout: float = 10.0, clock=lambda: datetime.now(UTC)):
        from pyhanko.sign.timestamps.requests_client import HTTPTimeStamper

        self.keys = keys
        self.lta = lta
        self._roots = load_pem_certs(trust_roots_pem)
        self._timeout = timeout
        self._tsa = HTTPTimeStamper(tsa_url, timeout=timeout) if tsa_url else None
        self._clock = clock
        self._chain = self._load_chain()

    def _load_chain(self) -> list[asn1_x509.Certificate]:
        return [_asn1(e.certificate) for e in self.keys.enrolled() if e.label.startswith(CA_PREFIX)]

    def signer(self, ref: SignerRef):
        enrolled = self.keys.find(key_label(ref.role, ref.signer_id))
        who = f"{WHO[ref.role]} {ref.signer_id!r}"
        if enrolled is None or not enrolled.has_key:
            raise SigningRefused(f"{who} has no enrolled {ref.role.value} signing key in token "
                                 f"{self.keys.token_label!r} (enroll it: python -m signing enroll)")
        now = self._clock()
        if now > enrolled.not_after:
            raise SigningRefused(f"the certificate {enrolled.describe()} of {who} expired on "
                                 f"{enrolled.not_after.isoformat()}")
        if now < enrolled.not_before:
            raise SigningRefused(f"the certificate {enrolled.describe()} of {who} is not valid before "
                                 f"{enrolled.not_before.isoformat()}")
        if not self._chain:
            self._chain = self._load_chain()
        identity = SignerIdentity(name=enrolled.common_name, title=enrolled.title,
                                  organization=enrolled.organization, certificate=enrolled.describe())
        return self.keys.signer(enrolled, self._chain), identity

    def timestamper(self):
        return self._tsa

    def validation_context(self):
        from pyhanko_certvalidator import ValidationContext
        from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

        return ValidationContext(trust_roots=self._roots, other_certs=self._chain, allow_fetching=True,
                                 revocation_mode="hard-fail",
                                 fetcher_backend=RequestsFetcherBackend(per_request_timeout=self._timeout))


# -- enrollment ----------------------------------------------------------------------------------


class CaClient:
    """The CA's enrollment API over HTTP (``POST /issue``, ``POST /revoke``; the development CA of
    :mod:`motcua_dev.pki` speaks it). The public key goes out, the certificate comes back: the
    private key never leaves the token."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(f"{self.base_url}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - the CA's URL
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise InvalidArgument("ca", f"the CA refused {path}: {exc.read()[:300]!r}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise Unavailable(f"the CA at {self.base_url} does not answer: {exc}") from exc

    def issue(self, public_key_der: bytes, *, common_name: str, organization: str, profile: str, title: str = "",
              province: str = "", days: int | None = None) -> x509.Certificate:
        answer = self._post("/issue", {
            "public_key": base64.b64encode(public_key_der).decode(), "common_name": common_name,
            "organization": organization, "title": title, "province": province, "profile": profile,
            **({"days": days} if days else {})})
        return x509.load_pem_x509_certificate(answer["certificate"].encode())

    def revoke(self, serial: str, reason: str = "unspecified") -> str:
        return self._post("/revoke", {"serial": serial, "reason": reason})["revoked_at"]

    def ca_certificates(self) -> list[x509.Certificate]:
        out = []
        for name in ("issuing", "root"):
            try:
                with urllib.request.urlopen(f"{self.base_url}/certs/{name}.crt", timeout=self.timeout) as r:  # noqa: S310
                    out.append(x509.load_der_x509_certificate(r.read()))
            except (urllib.error.URLError, OSError) as exc:
                raise Unavailable(f"the CA at {self.base_url} does not answer: {exc}") from exc
        return out


@dataclass(frozen=True)
class Subject:
    common_name: str
    organization: str
    title: str = ""
    province: str = ""

    def name(self) -> x509.Name:
        """As an X.509 subject (for a certification request): C=VN, ST, O, title, CN."""
        from cryptography.x509.oid import NameOID

        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
        if self.province:
            attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, self.province))
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization))
        if self.title:
            attrs.append(x509.NameAttribute(NameOID.TITLE, self.title))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name))
        return x509.Name(attrs)


class Enrollment:
    """Enroll, list and revoke the officials' and the units' keys of one token."""

    def __init__(self, keys: TokenKeys, ca: CaClient):
        self.keys = keys
        self.ca = ca

    def enroll(self, role: SignerRole, signer_id: str, subject: Subject, *, days: int | None = None,
               replace: bool = False) -> Enrolled:
        label = key_label(role, signer_id)
        existing = self.keys.find(label)
        if existing is not None and existing.has_key and not replace:
            return existing
        self._store_ca_chain()
        public_key = self.keys.generate(label)
        cert = self.ca.issue(public_key, common_name=subject.common_name, organization=subject.organization,
                             title=subject.title, province=subject.province, days=days,
                             profile="personal" if role is SignerRole.PERSONAL else "seal")
        self.keys.store_certificate(label, cert)
        enrolled = self.keys.find(label)
        assert enrolled is not None
        return enrolled

    def _store_ca_chain(self, certificates: list[x509.Certificate] | None = None) -> None:
        """The CA certificates the signers' chains are built from, kept in the token (``ca:<CN>``)."""
        present = {e.serial for e in self.keys.enrolled() if e.label.startswith(CA_PREFIX)}
        for cert in self.ca.ca_certificates() if certificates is None else certificates:
            if format(cert.serial_number, "x") not in present:
                cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
                self.keys.store_certificate(f"{CA_PREFIX}{cn}", cert)

    # -- enrollment against any CA: a PKCS#10 request out, the issued certificate in -----------

    def request(self, role: SignerRole, signer_id: str, subject: Subject, *, replace: bool = False) -> bytes:
        """A new key pair in the token and its PKCS#10 request (DER, signed by the token key) for a
        CA to certify; the key signs nothing until :meth:`import_certificate` stores its
        certificate. An enrolled key is kept unless ``replace``."""
        label = key_label(role, signer_id)
        existing = self.keys.find(label)
        if existing is not None and existing.has_key and not replace:
            raise InvalidArgument("id", f"{WHO[role]} {signer_id!r} is enrolled ({existing.describe()}); "
                                  "--replace makes a new key")
        self.keys.generate(label)
        return self.keys.certification_request(label, subject.name())

    def import_certificate(self, label: str, pem_data: bytes, trust_roots_pem: bytes, *,
                           timeout: float = 10.0) -> Enrolled:
        """Store the certificate a CA issued for the key under ``label`` (PEM; the CA's chain may
        follow it) after checking that it certifies that key, and that it chains to the trust
        roots, is valid now, unrevoked (when the status can be had) and allows non-repudiation."""
        if not label.startswith((OFFICIAL_PREFIX, SEAL_PREFIX)):
            raise InvalidArgument("label", f"must be {OFFICIAL_PREFIX}<official id> or {SEAL_PREFIX}<unit slug>")
        public = self.keys.public_key(label)
        if public is None:
            raise NotFound(f"the token {self.keys.token_label!r} has no key {label!r} (make one: enroll --csr-out)")
        try:
            certs = [x509.load_der_x509_certificate(c.dump()) for c in load_pem_certs(pem_data)]
        except ValueError as exc:
            raise InvalidArgument("certificate", f"is not a PEM or DER certificate: {exc}") from None
        key = serialization.load_der_public_key(public)
        leaf = next((c for c in certs if _same_key(c.public_key(), key)), None)
        if leaf is None:
            raise InvalidArgument("certificate", f"certifies no key of {label!r}: its public key is another")
        others = [c for c in certs if c is not leaf]
        path = _validated_path(leaf, others + [e.certificate for e in self.keys.enrolled()
                                               if e.label.startswith(CA_PREFIX)], trust_roots_pem, timeout)
        self._store_ca_chain(path)
        self.keys.store_certificate(label, leaf)
        enrolled = self.keys.find(label)
        assert enrolled is not None
        return enrolled


    def revoke(self, role: SignerRole, signer_id: str, reason: str = "unspecified") -> tuple[Enrolled, str]:
        label = key_label(role, signer_id)
        enrolled = self.keys.find(label)
        if enrolled is None:
            raise NotFound(f"{WHO[role]} {signer_id!r} is not enrolled")
        return enrolled, self.ca.revoke(enrolled.serial, reason)

    def listing(self) -> list[Enrolled]:
        return [e for e in self.keys.enrolled() if not e.label.startswith(CA_PREFIX)]

    def revocation(self, entries: list[Enrolled], timeout: float) -> dict[str, Revocation]:
        """Each entry's status now from the OCSP responder of its certificate (label → status),
        asked in parallel so that a responder out of reach costs one timeout, not one per key."""
        from concurrent.futures import ThreadPoolExecutor

        issuers = {e.certificate.subject: e.certificate for e in self.keys.enrolled() if e.label.startswith(CA_PREFIX)}
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = pool.map(lambda e: ocsp_status(e.certificate, issuers.get(e.certificate.issuer), timeout),
                               entries)
            return {e.label: answer for e, answer in zip(entries, answers, strict=True)}


def _same_key(a, b) -> bool:
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(*der) == b.public_bytes(*der)


def _validated_path(leaf: x509.Certificate, intermediates: list[x509.Certificate], trust_roots_pem: bytes,
                    timeout: float) -> list[x509.Certificate]:
    """The CA certificates from ``leaf`` up to a trust root (the root included), once the leaf
    proves valid for signing now; revocation is checked where the CA publishes it."""
    import asyncio

    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator import errors as cv_errors
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

    context = ValidationContext(trust_roots=load_pem_certs(trust_roots_pem),
                                other_certs=[_asn1(c) for c in intermediates], allow_fetching=True,
                                revocation_mode="soft-fail",
                                fetcher_backend=RequestsFetcherBackend(per_request_timeout=timeout))
    validator = CertificateValidator(_asn1(leaf), validation_context=context)
    who = f"{leaf.subject.rfc4514_string()} (serial {leaf.serial_number:x})"
    try:
        path = asyncio.run(validator.async_validate_usage({"non_repudiation"}))
    except cv_errors.RevokedError as exc:
        raise InvalidArgument("certificate", f"{who} is revoked ({exc})") from None
    except (cv_errors.ExpiredError, cv_errors.NotYetValidError) as exc:
        raise InvalidArgument("certificate", f"{who} is not valid now ({exc})") from None
    except cv_errors.InvalidCertificateError as exc:
        raise InvalidArgument("certificate", f"{who} cannot sign documents ({exc})") from None
    except (cv_errors.PathBuildingError, cv_errors.PathValidationError) as exc:
        raise InvalidArgument("certificate", f"{who} does not chain to MOTCUA_TRUST_ROOTS ({exc})") from None
    return [x509.load_der_x509_certificate(c.dump()) for c in path.iter_certs(include_root=True)
            if c is not path.leaf]
