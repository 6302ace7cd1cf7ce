"""The development PKI: a root CA, an official's personal certificate, the organisation seal
certificate and a timestamp authority, made once in a directory and reused afterwards.

Production keys live in an HSM reached over PKCS#11 and never leave it; here they are PEM files
(mode 0600) so a developer machine and CI can sign without one. Everything that needs key
material goes through :meth:`DevPki.signer` and :meth:`DevPki.timestamper` (the
:class:`signing.adapters.pdf.KeySource` port), so a PKCS#11 key source replaces this module
without touching the PDF code.

The timestamp authority is pyHanko's in-process :class:`DummyTimeStamper`: real RFC 3161 tokens,
signed by the dev TSA certificate, with no network (PAdES B-T). Revocation data (CRL/OCSP) is not
offered by this CA, so B-LT cannot be produced with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signing.domain import SignerRole, UnknownSigner

MANIFEST = "pki.json"
MANIFEST_VERSION = 1
ROOT_NAME = "motcua Dev Root CA"
DEV_OFFICIAL_ID = "official.nguyen-van-an"
DEV_SEAL_ID = "seal.ubnd-tx-bim-son"
ORGANISATION = "UBND thị xã Bỉm Sơn"
PROVINCE = "Thanh Hóa"
# EC P-256 for the CA and the signers (loading an RSA key costs pyHanko ~60 ms per signature, as
# it re-reads and checks the key each time); RSA 2048 for the TSA, the only kind pyHanko's
# DummyTimeStamper signs with.
TSA_KEY_BITS = 2048
ROOT_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=825)
CLOCK_SKEW = timedelta(minutes=10)  # leaves are valid a little before "now" on other machines

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class DevPki:
    """The development PKI in ``directory``: what it holds and how to use it."""

    directory: Path
    root_cert_file: Path
    signers: dict[str, tuple[SignerRole, KeyPair]]
    tsa: KeyPair
    official_id: str = DEV_OFFICIAL_ID
    seal_id: str = DEV_SEAL_ID

    def trust_roots(self) -> list[bytes]:
        """The root certificates (PEM) a verifier should trust for documents signed here."""
        return [self.root_cert_file.read_bytes()]

    def signer(self, signer_id: str, role: SignerRole) -> SimpleSigner:
        """The signer for ``signer_id``, whose certificate must be one for ``role`` (an official's
        key cannot seal, the seal cannot stand in for the official)."""
        known_role, pair = self.signers.get(signer_id, (None, None))
        if pair is None or known_role != role:
            raise UnknownSigner(signer_id, role.value)
        return load_signer(pair, chain=(self.root_cert_file,))

    def timestamper(self) -> DummyTimeStamper:
        return load_timestamper(self.tsa, chain=(self.root_cert_file,))


def load_signer(pair: KeyPair, chain: tuple[Path, ...] = ()) -> SimpleSigner:
    """The one place a signer is made from key material (a PKCS#11 signer replaces this)."""
    return SimpleSigner.load(
        key_file=str(pair.key_file), cert_file=str(pair.cert_file), ca_chain_files=[str(c) for c in chain]
    )


def load_timestamper(pair: KeyPair, chain: tuple[Path, ...] = ()) -> DummyTimeStamper:
    chain_certs = [_load_asn1_cert(p) for p in chain]
    key = asn1_keys.PrivateKeyInfo.load(_pem_der(pair.key_file.read_bytes()))
    return DummyTimeStamper(
        tsa_cert=_load_asn1_cert(pair.cert_file),
        tsa_key=key,
        certs_to_embed=SimpleCertificateStore.from_certs(chain_certs),
    )


def ensure_dev_pki(directory: str | os.PathLike[str]) -> DevPki:
    """Make the development PKI in ``directory`` unless it is there already; return it.

    Idempotent and safe when several processes start at once (an exclusive lock on the
    directory). The manifest is written last, so a half-made PKI is made again from scratch.
    """
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(directory / ".lock"):
        manifest = directory / MANIFEST
        if not manifest.exists():
            _create(directory)
        return _load(directory, json.loads(manifest.read_text("utf-8")))


# -- creation ----------------------------------------------------------------------------------


def _create(directory: Path) -> None:
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(cn=ROOT_NAME, org="motcua (development only)")
    root = _certificate(
        subject=root_name, issuer=root_name, public_key=root_key.public_key(), signing_key=root_key,
        not_before=now - CLOCK_SKEW, not_after=now + ROOT_VALIDITY, ca=True,
    )
    _write_pair(directory, "root", root, root_key)

    leaves = {
        "official": (_name(cn="Nguyễn Văn An", org=ORGANISATION, province=PROVINCE), None),
        "seal": (_name(cn=ORGANISATION, org=ORGANISATION, province=PROVINCE), None),
        "tsa": (_name(cn="motcua Dev Timestamp Authority", org="motcua (development only)"),
                ExtendedKeyUsageOID.TIME_STAMPING),
    }
    for stem, (subject, eku) in leaves.items():
        key = (rsa.generate_private_key(public_exponent=65537, key_size=TSA_KEY_BITS) if stem == "tsa"
               else ec.generate_private_key(ec.SECP256R1()))
        cert = _certificate(
            subject=subject, issuer=root_name, public_key=key.public_key(), signing_key=root_key,
            not_before=now - CLOCK_SKEW, not_after=now + LEAF_VALIDITY, ca=False, eku=eku,
        )
        _write_pair(directory, stem, cert, key)

    manifest = {
        "version": MANIFEST_VERSION,
        "created": now.isoformat(),
        "root": "root.pem",
        "tsa": {"cert": "tsa.pem", "key": "tsa.key.pem"},
        "signers": {
            DEV_OFFICIAL_ID: {"role": SignerRole.PERSONAL.value, "cert": "official.pem",
                              "key": "official.key.pem"},
            DEV_SEAL_ID: {"role": SignerRole.SEAL.value, "cert": "seal.pem", "key": "seal.key.pem"},
        },
    }
    _atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2).encode(), 0o644)


def _name(cn: str, org: str, province: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    if province:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, province))
    attrs += [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ]
    return x509.Name(attrs)


def _certificate(
    *, subject: x509.Name, issuer: x509.Name, public_key: PublicKey,
    signing_key: PrivateKey, not_before: datetime, not_after: datetime, ca: bool,
    eku: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca, content_commitment=not ca, key_cert_sign=ca, crl_sign=ca,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    if not (ca and subject == issuer):
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    return builder.sign(signing_key, hashes.SHA256())


def _write_pair(directory: Path, stem: str, cert: x509.Certificate, key: PrivateKey) -> None:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _atomic_write(directory / f"{stem}.key.pem", key_pem, 0o600)
    _atomic_write(directory / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask; the key must be 0600 exactly
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# -- loading -----------------------------------------------------------------------------------


def _load(directory: Path, manifest: dict) -> DevPki:
    if manifest.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{directory / MANIFEST}: unsupported version {manifest.get('version')!r}")
    signers = {
        signer_id: (SignerRole(entry["role"]), KeyPair(directory / entry["cert"], directory / entry["key"]))
        for signer_id, entry in manifest["signers"].items()
    }
    tsa = KeyPair(directory / manifest["tsa"]["cert"], directory / manifest["tsa"]["key"])
    pki = DevPki(directory=directory, root_cert_file=directory / manifest["root"], signers=signers, tsa=tsa)
    missing = [str(p) for p in _files(pki) if not p.exists()]
    if missing:
        raise FileNotFoundError(f"development PKI in {directory} is incomplete: {', '.join(missing)}")
    return pki


def _files(pki: DevPki) -> list[Path]:
    pairs = [pair for _role, pair in pki.signers.values()] + [pki.tsa]
    return [pki.root_cert_file] + [p for pair in pairs for p in (pair.cert_file, pair.key_file)]


def _pem_der(data: bytes) -> bytes:
    if pem.detect(data):
        _type, _headers, data = pem.unarmor(data)
    return data


def _load_asn1_cert(path: Path) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(_pem_der(path.read_bytes()))
