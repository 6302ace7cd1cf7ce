"""A realistic development PKI served over HTTP: root CA → issuing CA, CRLs, an OCSP responder, an
RFC 3161 timestamp authority, and an enrollment endpoint that issues certificates for public keys
made elsewhere (in the PKCS#11 token: signer keys never come here).

Everything the CA signs with lives as files in one directory (mode 0700, keys 0600): that is fine
for development only. Every certificate carries the URLs of this server (AIA caIssuers and OCSP,
CRL distribution point), so pyHanko fetches revocation data over HTTP exactly as it would from a
real provincial CA, and embeds it (PAdES B-LT).

Endpoints (``base_url`` = ``http://host:port``)::

    GET  /certs/root.crt  /certs/issuing.crt    DER certificates (AIA caIssuers)
    GET  /crl/root.crl    /crl/issuing.crl      DER CRLs, made on each request
    POST /ocsp, GET /ocsp/<base64 request>      application/ocsp-request → ocsp-response
    POST /tsa                                   application/timestamp-query → timestamp-reply
    POST /issue    JSON {public_key (base64 SPKI DER), common_name, organization, title?,
                         organizational_unit?, province?, profile: personal|seal, days?}
                   → {certificate (PEM), serial (hex), not_after}
    POST /csr?profile=personal|seal[&days=N]   a PKCS#10 request (PEM/DER) → the certificate (PEM)
    POST /revoke   JSON {serial (hex), reason?} → {serial, revoked_at}
    GET  /health

Run it with ``python -m motcua_dev.pki serve --dir var/pki --port 8790`` (``make run`` does), or
in a test with :func:`serving` (the ``dev_pki`` fixture of :mod:`motcua_dev.testing`).
``python -m motcua_dev.pki nss --dir var/pki --out var/nss`` makes the NSS database in which
poppler's ``pdfsig -nssdir sql:var/nss`` trusts the dev root (:func:`nss_trust_store`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_PORT = 8790
DEFAULT_DIR = Path("var/pki")
MANIFEST = "ca.json"
ROOT_NAME = "motcua Dev Root CA"
ISSUING_NAME = "motcua Dev Issuing CA"
TSA_NAME = "motcua Dev Timestamp Authority"
DEV_ORG = "motcua (development only)"
CLOCK_SKEW = timedelta(minutes=10)
ROOT_VALIDITY = timedelta(days=3650)
ISSUING_VALIDITY = timedelta(days=1825)
LEAF_VALIDITY = timedelta(days=730)
CRL_VALIDITY = timedelta(hours=12)
MAX_BODY = 64 * 1024
PROFILES = ("personal", "seal")
REASONS = {r.name: r for r in x509.ReasonFlags}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class DevCa:
    """The CA's files in ``directory``, made on first use for ``base_url`` (baked into every
    certificate). A directory made for another URL is refused: remove it to start again."""

    def __init__(self, directory: str | os.PathLike[str], base_url: str):
        self.directory = Path(directory)
        self.base_url = base_url.rstrip("/")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.directory / "issued").mkdir(mode=0o700, exist_ok=True)
        self._lock = threading.Lock()
        with _locked(self.directory / ".lock"):
            manifest = self.directory / MANIFEST
            if not manifest.exists():
                self._create()
            data = json.loads(manifest.read_text("utf-8"))
        if data["base_url"] != self.base_url:
            raise SystemExit(f"{self.directory} holds a development CA made for {data['base_url']}, not "
                             f"{self.base_url}: remove the directory (and re-enroll) or use that URL")
        self.root_cert = self._cert("root.pem")
        self.issuing_cert = self._cert("issuing.pem")
        self.tsa_cert = self._cert("tsa.pem")
        self.root_key = self._key("root.key.pem")
        self.issuing_key = self._key("issuing.key.pem")
        self.tsa_key_pem = (self.directory / "tsa.key.pem").read_bytes()
        self._timestamper = None

    # -- files ---------------------------------------------------------------------------------

    @property
    def root_pem_file(self) -> Path:
        return self.directory / "root.pem"

    def _cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.directory / name).read_bytes())

    def _key(self, name: str):
        return serialization.load_pem_private_key((self.directory / name).read_bytes(), None)

    def _state(self) -> dict[str, Any]:
        path = self.directory / "state.json"
        return json.loads(path.read_text("utf-8")) if path.exists() else {"issued": {}, "revoked": {}}

    def _save_state(self, state: dict[str, Any]) -> None:
        _write(self.directory / "state.json", json.dumps(state, indent=1).encode(), 0o600)

    def _create(self) -> None:
        now = _now()
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = _name(ROOT_NAME, DEV_ORG)
        root = self._build(root_name, root_name, root_key.public_key(), root_key, now + ROOT_VALIDITY, ca=True,
                           path_length=1, crl="root", aia=False)
        issuing_key = ec.generate_private_key(ec.SECP256R1())
        issuing_name = _name(ISSUING_NAME, DEV_ORG)
        issuing = self._build(issuing_name, root_name, issuing_key.public_key(), root_key,
                              now + ISSUING_VALIDITY, ca=True, path_length=0, crl="root", aia="root")
        # pyHanko's TSA implementation signs with RSA
        tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tsa = self._build(_name(TSA_NAME, DEV_ORG), issuing_name, tsa_key.public_key(), issuing_key,
                          now + LEAF_VALIDITY, ca=False, crl="issuing", aia="issuing",
                          eku=ExtendedKeyUsageOID.TIME_STAMPING)
        for stem, cert, key in (("root", root, root_key), ("issuing", issuing, issuing_key), ("tsa", tsa, tsa_key)):
            _write(self.directory / f"{stem}.key.pem", _key_pem(key), 0o600)
            _write(self.directory / f"{stem}.pem", _cert_pem(cert), 0o644)
        self._save_state({"issued": {}, "revoked": {}})
        _write(self.directory / MANIFEST, json.dumps({"base_url": self.base_url, "created": now.isoformat()}).encode(),
               0o644)

    def _build(self, subject: x509.Name, issuer: x509.Name, public_key, signing_key, not_after: datetime, *,
               ca: bool, path_length: int | None = None, crl: str | None = None, aia: str | bool = "issuing",
               eku=None, profile: str | None = None) -> x509.Certificate:
        now = _now()
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
             .serial_number(x509.random_serial_number()).not_valid_before(now - CLOCK_SKEW).not_valid_after(not_after)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                            critical=False)
             .add_extension(x509.KeyUsage(
                 digital_signature=not ca, content_commitment=not ca and eku is None, key_cert_sign=ca,
                 crl_sign=ca, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False), critical=True))
        if crl:
            b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(f"{self.base_url}/crl/{crl}.crl")],
                relative_name=None, reasons=None, crl_issuer=None)]), critical=False)
        if aia:
            access = [x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                                             x509.UniformResourceIdentifier(f"{self.base_url}/certs/{aia}.crt"))]
            if not ca:
                access.insert(0, x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP,
                                                        x509.UniformResourceIdentifier(f"{self.base_url}/ocsp")))
            b = b.add_extension(x509.AuthorityInformationAccess(access), critical=False)
        if eku is not None:
            b = b.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
        if profile is not None:  # a certificate policy per profile (illustrative OIDs under 2.999)
            oid = "2.999.10.1" if profile == "personal" else "2.999.10.2"
            b = b.add_extension(x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(oid), None)]),
                                critical=False)
        return b.sign(signing_key, hashes.SHA256())

    # -- operations ----------------------------------------------------------------------------

    def issue(self, *, public_key_der: bytes, common_name: str, organization: str, profile: str,
              title: str = "", organizational_unit: str = "", province: str = "", days: int | None = None,
              not_after: datetime | None = None) -> x509.Certificate:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        if not common_name.strip() or not organization.strip():
            raise ValueError("common_name and organization are required")
        public_key = serialization.load_der_public_key(public_key_der)
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
        if province:
            attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, province))
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        if organizational_unit:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit))
        if title:
            attrs.append(x509.NameAttribute(NameOID.TITLE, title))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        return self._issue_leaf(x509.Name(attrs), public_key, profile, days, not_after)

    def sign_csr(self, csr_data: bytes, *, profile: str, days: int | None = None) -> x509.Certificate:
        """A certificate for a PKCS#10 request (PEM or DER) made elsewhere, e.g. by ``python -m
        signing enroll --csr-out`` with a key in a token: the request's signature must verify, the
        subject is the request's (it must name a CN and an O), the extensions are the profile's."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        try:
            csr = (x509.load_pem_x509_csr(csr_data) if csr_data.lstrip().startswith(b"-----")
                   else x509.load_der_x509_csr(csr_data))
        except ValueError as exc:
            raise ValueError(f"not a PKCS#10 certificate request: {exc}") from None
        if not csr.is_signature_valid:
            raise ValueError("the request's signature does not verify (proof of possession failed)")
        for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
            if not csr.subject.get_attributes_for_oid(oid):
                raise ValueError(f"the request's subject has no {oid._name}")
        return self._issue_leaf(csr.subject, csr.public_key(), profile, days, None)

    def _issue_leaf(self, subject: x509.Name, public_key, profile: str, days: int | None,
                    not_after: datetime | None) -> x509.Certificate:
        end = not_after or (_now() + (timedelta(days=days) if days else LEAF_VALIDITY))
        end = min(end, self.issuing_cert.not_valid_after_utc)
        cert = self._build(subject, self.issuing_cert.subject, public_key, self.issuing_key, end,
                           ca=False, crl="issuing", aia="issuing", profile=profile)
        serial = format(cert.serial_number, "x")
        with self._lock, _locked(self.directory / ".lock"):
            _write(self.directory / "issued" / f"{serial}.pem", _cert_pem(cert), 0o644)
            state = self._state()
            state["issued"][serial] = {"subject": cert.subject.rfc4514_string(), "profile": profile,
                                       "not_after": cert.not_valid_after_utc.isoformat()}
            self._save_state(state)
        return cert

    def revoke(self, serial: str, reason: str = "unspecified", at: datetime | None = None) -> datetime:
        serial = serial.lower().removeprefix("0x")
        if not (self.directory / "issued" / f"{serial}.pem").exists():
            raise KeyError(serial)
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {', '.join(REASONS)}")
        with self._lock, _locked(self.directory / ".lock"):
            state = self._state()
            entry = state["revoked"].setdefault(serial, {"at": (at or _now()).isoformat(), "reason": reason})
            self._save_state(state)
        return datetime.fromisoformat(entry["at"])

    def issued_cert(self, serial_number: int) -> x509.Certificate | None:
        path = self.directory / "issued" / f"{serial_number:x}.pem"
        return x509.load_pem_x509_certificate(path.read_bytes()) if path.exists() else None

    def crl(self, which: str) -> bytes:
        now = _now()
        if which == "root":
            issuer, key, revoked = self.root_cert, self.root_key, {}
        else:
            issuer, key, revoked = self.issuing_cert, self.issuing_key, self._state()["revoked"]
        b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject).last_update(now - CLOCK_SKEW)
             .next_update(now + CRL_VALIDITY)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
             .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False))
        for serial, entry in revoked.items():
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(serial, 16))
                .revocation_date(datetime.fromisoformat(entry["at"]))
                .add_extension(x509.CRLReason(REASONS[entry["reason"]]), critical=False).build())
        return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp(self, request_der: bytes) -> bytes:
        try:
            req = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST).public_bytes(
                serialization.Encoding.DER)
        cert = self.issued_cert(req.serial_number)
        if cert is None and req.serial_number == self.tsa_cert.serial_number:
            cert = self.tsa_cert
        if cert is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                serialization.Encoding.DER)
        now = _now()
        entry = self._state()["revoked"].get(format(req.serial_number, "x"))
        if entry:
            status, at, reason = (ocsp.OCSPCertStatus.REVOKED, datetime.fromisoformat(entry["at"]),
                                  REASONS[entry["reason"]])
        else:
            status, at, reason = ocsp.OCSPCertStatus.GOOD, None, None
        b = (ocsp.OCSPResponseBuilder()
             .add_response(cert=cert, issuer=self.issuing_cert, algorithm=req.hash_algorithm, cert_status=status,
                           this_update=max(now - timedelta(hours=1), cert.not_valid_before_utc),
                           next_update=now + CRL_VALIDITY,
                           revocation_time=at, revocation_reason=reason)
             .responder_id(ocsp.OCSPResponderEncoding.HASH, self.issuing_cert))
        with contextlib.suppress(x509.ExtensionNotFound):
            nonce = req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
        return b.sign(self.issuing_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def timestamp(self, query_der: bytes) -> bytes:
        from asn1crypto import keys as asn1_keys
        from asn1crypto import pem, tsp
        from asn1crypto import x509 as asn1_x509
        from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        if self._timestamper is None:
            def asn1(cert: x509.Certificate):
                return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
            _t, _h, key_der = pem.unarmor(self.tsa_key_pem)
            self._timestamper = DummyTimeStamper(
                tsa_cert=asn1(self.tsa_cert), tsa_key=asn1_keys.PrivateKeyInfo.load(key_der),
                certs_to_embed=SimpleCertificateStore.from_certs([asn1(self.issuing_cert)]))
        req = tsp.TimeStampReq.load(query_der)
        with self._lock:
            return self._timestamper.request_tsa_response(req).dump()


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


# -- HTTP ----------------------------------------------------------------------------------------


def wsgi_app(ca: DevCa):
    def app(environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        try:
            status, ctype, body = _route(ca, method, path, environ)
        except (ValueError, KeyError) as exc:
            status, ctype, body = "400 Bad Request", "application/json", json.dumps({"error": str(exc)}).encode()
        start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
        return [body]

    return app


def _body(environ) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > MAX_BODY:
        raise ValueError("request too large")
    return environ["wsgi.input"].read(length)


def _route(ca: DevCa, method: str, path: str, environ) -> tuple[str, str, bytes]:
    ok = "200 OK"
    if method == "GET":
        if path == "/health":
            return ok, "text/plain", b"ok"
        certs = {"/certs/root.crt": ca.root_cert, "/certs/issuing.crt": ca.issuing_cert, "/certs/tsa.crt": ca.tsa_cert}
        if path in certs:
            return ok, "application/pkix-cert", certs[path].public_bytes(serialization.Encoding.DER)
        if path in ("/crl/root.crl", "/crl/issuing.crl"):
            return ok, "application/pkix-crl", ca.crl(path.split("/")[-1].removesuffix(".crl"))
        if path.startswith("/ocsp/"):  # RFC 6960 A.1: GET {url}/{url-encoding of base-64 DER request}
            from urllib.parse import unquote

            return ok, "application/ocsp-response", ca.ocsp(base64.b64decode(unquote(path[len("/ocsp/"):])))
    elif method == "POST":
        if path == "/ocsp":
            return ok, "application/ocsp-response", ca.ocsp(_body(environ))
        if path == "/tsa":
            return ok, "application/timestamp-reply", ca.timestamp(_body(environ))
        if path == "/issue":
            req = json.loads(_body(environ))
            cert = ca.issue(public_key_der=base64.b64decode(req["public_key"]), common_name=req["common_name"],
                            organization=req["organization"], profile=req["profile"], title=req.get("title", ""),
                            organizational_unit=req.get("organizational_unit", ""),
                            province=req.get("province", ""), days=req.get("days"))
            return ok, "application/json", json.dumps({
                "certificate": _cert_pem(cert).decode(), "serial": format(cert.serial_number, "x"),
                "not_after": cert.not_valid_after_utc.isoformat()}).encode()
        if path == "/csr":  # a PKCS#10 request in, the certificate out (PEM); ?profile=personal|seal
            from urllib.parse import parse_qs

            query = parse_qs(environ.get("QUERY_STRING", ""))
            cert = ca.sign_csr(_body(environ), profile=(query.get("profile") or [""])[0],
                               days=int(query["days"][0]) if "days" in query else None)
            return ok, "application/pem-certificate-chain", _cert_pem(cert)
        if path == "/revoke":
            req = json.loads(_body(environ))
            at = ca.revoke(req["serial"], req.get("reason", "unspecified"))
            return ok, "application/json", json.dumps({"serial": req["serial"], "revoked_at": at.isoformat()}).encode()
    return "404 Not Found", "text/plain", b"not found"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass


class _ThreadingServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request, client_address):  # one thread per request (TSA and OCSP at once)
        threading.Thread(target=self._handle, args=(request, client_address), daemon=True).start()

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


@dataclass
class DevPkiServer:
    """A running development PKI: its CA and its URLs."""

    ca: DevCa
    base_url: str

    @property
    def tsa_url(self) -> str:
        return f"{self.base_url}/tsa"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base_url}/ocsp"

    @property
    def crl_url(self) -> str:
        return f"{self.base_url}/crl/issuing.crl"

    @property
    def root_pem_file(self) -> Path:
        return self.ca.root_pem_file

    def env(self) -> dict[str, str]:
        """The settings that point the signing service at this PKI."""
        return {"MOTCUA_TSA_URL": self.tsa_url, "MOTCUA_PKI_URL": self.base_url,
                "MOTCUA_TRUST_ROOTS": str(self.root_pem_file)}


@contextlib.contextmanager
def serving(directory: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0) -> Iterator[DevPkiServer]:
    """The PKI of ``directory`` served from a thread of this process (port 0: a free one)."""
    holder: dict[str, Any] = {}
    server = make_server(host, port, lambda e, s: holder["app"](e, s), server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    base_url = f"http://{host}:{server.server_port}"
    ca = DevCa(directory, base_url)
    holder["app"] = wsgi_app(ca)
    thread = threading.Thread(target=server.serve_forever, name="dev-pki", daemon=True)
    thread.start()
    try:
        yield DevPkiServer(ca, base_url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def nss_trust_store(directory: str | os.PathLike[str], root_pem: bytes, intermediates_pem: list[bytes]) -> str:
    """An NSS database (``certutil``, Debian libnss3-tools) trusting ``root_pem`` for signatures and
    knowing the intermediates without trusting them, as a relying party's store (a mail client's,
    Adobe's) knows them; returns the ``sql:`` path for ``pdfsig -nssdir``.

    The intermediates are not optional for poppler 22.12 (Debian 12): its ``pdfsig`` reads NSS's
    last error after ``CERT_PKIXVerifyCert`` without looking at what that call returned. When two
    signatures chain through an intermediate that NSS only knows from the first signature's CMS,
    re-importing it for the second leaves ``SEC_ERROR_REUSED_ISSUER_AND_SERIAL`` behind a
    successful verification, and pdfsig reports "Unknown issue with Certificate or corrupted data."
    for the second signature. Held in the database, the intermediate is found there instead."""
    import shutil
    import subprocess
    import tempfile

    certutil = shutil.which("certutil")
    if certutil is None:
        raise SystemExit("certutil is missing: run `make setup` (Debian package libnss3-tools)")
    path = Path(directory)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = f"sql:{path}"
    if not (path / "cert9.db").exists():
        subprocess.run([certutil, "-N", "-d", db, "--empty-password"], check=True, capture_output=True)
    # ",C,": a CA trusted to issue e-mail/document signing certificates; ",,": known, not trusted
    entries = [("motcua-dev-root", root_pem, ",C,")]
    entries += [(f"motcua-dev-intermediate-{n}", pem_, ",,") for n, pem_ in enumerate(intermediates_pem, 1)]
    for nickname, pem_bytes, trust in entries:
        with tempfile.NamedTemporaryFile(suffix=".pem") as f:
            f.write(pem_bytes)
            f.flush()
            subprocess.run([certutil, "-A", "-d", db, "-n", nickname, "-t", trust, "-i", f.name], check=True,
                           capture_output=True)
    return db


def dev_nss_trust_store(ca_directory: str | os.PathLike[str], directory: str | os.PathLike[str]) -> str:
    """:func:`nss_trust_store` for the development CA kept in ``ca_directory``."""
    ca = Path(ca_directory)
    return nss_trust_store(directory, (ca / "root.pem").read_bytes(), [(ca / "issuing.pem").read_bytes()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m motcua_dev.pki", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["serve", "nss"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--out", type=Path, default=Path("var/nss"), help="nss: where the NSS database goes")
    args = parser.parse_args(argv)
    if args.command == "nss":
        if not (args.dir / "root.pem").exists():
            raise SystemExit(f"no development CA in {args.dir}: run `make run` (or serve) first")
        print(f"pdfsig -nssdir {dev_nss_trust_store(args.dir, args.out)} <file.pdf>")
        return 0
    with serving(args.dir, args.host, args.port) as pki:
        print(f"READY dev PKI at {pki.base_url} (root {pki.root_pem_file}; TSA {pki.tsa_url})", flush=True)
        stopped = threading.Event()
        import signal

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopped.set())
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
