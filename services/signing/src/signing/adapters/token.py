"""Signer keys in a PKCS#11 token (SoftHSM2 in development, a real HSM or USB token in production).

A key pair is generated *inside* the token (EC P-256, private key sensitive and non-extractable),
its certificate is issued by the CA for the public key and stored in the token next to it, under
the same label and id. Labels:

* ``official:<official id>`` — an official's personal key (routing's official id);
* ``seal:<unit slug>`` — a unit's organisation seal (the unit slugs of the catalog).

One :class:`TokenKeys` per process opens one session (``open`` at start) and keeps it; signers are
cached per certificate, so nothing is reloaded per document. The PIN is read from a file and
never logged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import NameOID
from pkcs11.exceptions import DeviceError, GeneralError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from signing.domain import SignerRole

OFFICIAL_PREFIX = "official:"
SEAL_PREFIX = "seal:"


def key_label(role: SignerRole, signer_id: str) -> str:
    return (OFFICIAL_PREFIX if role is SignerRole.PERSONAL else SEAL_PREFIX) + signer_id


@dataclass(frozen=True)
class Enrolled:
    """A certificate held in the token (its private key next to it, same label)."""

    label: str
    certificate: x509.Certificate
    has_key: bool

    @property
    def role(self) -> SignerRole:
        return SignerRole.PERSONAL if self.label.startswith(OFFICIAL_PREFIX) else SignerRole.SEAL

    @property
    def signer_id(self) -> str:
        return self.label.split(":", 1)[1]

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    @property
    def not_before(self) -> datetime:
        return self.certificate.not_valid_before_utc

    def attribute(self, oid) -> str:
        values = self.certificate.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    @property
    def common_name(self) -> str:
        return self.attribute(NameOID.COMMON_NAME)

    @property
    def title(self) -> str:
        return self.attribute(NameOID.TITLE)

    @property
    def organization(self) -> str:
        return self.attribute(NameOID.ORGANIZATION_NAME)

    def describe(self) -> str:
        return f"{self.certificate.subject.rfc4514_string()} (serial {self.serial})"


OPEN_RETRIED = (GeneralError, DeviceError)  # a token busy or briefly unreadable; not a wrong PIN or label


class TokenKeys:
    """A session on one token of a PKCS#11 module."""

    def __init__(self, module: str, token_label: str, pin_file: str | Path):
        import pkcs11

        self._lib = pkcs11.lib(module)
        self.token_label = token_label
        pin = Path(pin_file).read_text("utf-8").strip()
        self.session = self._open(pin)
        self._lock = threading.RLock()
        self._signers: dict[tuple[str, int], object] = {}

    @retry(retry=retry_if_exception_type(OPEN_RETRIED), stop=stop_after_attempt(8),
           wait=wait_exponential(multiplier=0.1, max=2), reraise=True)
    def _open(self, pin: str):
        """A session on the token. SoftHSM2 (a file token) answers CKR_GENERAL_ERROR while another
        process writes the token (enrollment, another signer starting): tried again for ~5 s
        rather than losing the process, and with it the request it was started for."""
        return self._lib.get_token(token_label=self.token_label).open(rw=True, user_pin=pin)

    def close(self) -> None:
        self.session.close()

    # -- enrollment ----------------------------------------------------------------------------

    def generate(self, label: str) -> bytes:
        """A new EC P-256 key pair in the token under ``label`` (replacing any before); returns the
        public key as DER SubjectPublicKeyInfo. The private key is sensitive and non-extractable."""
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

        with self._lock:
            self.delete(label)
            params = self.session.create_domain_parameters(
                KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters("1.2.840.10045.3.1.7")}, local=True)
            public, _private = params.generate_keypair(
                store=True, label=label, id=label.encode(),
                public_template={Attribute.VERIFY: True},
                private_template={Attribute.SIGN: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                                  Attribute.PRIVATE: True})
            return encode_ec_public_key(public)

    def public_key(self, label: str) -> bytes | None:
        """The DER SubjectPublicKeyInfo of the key pair under ``label``; None when there is none."""
        from pkcs11 import ObjectClass
        from pkcs11.exceptions import NoSuchKey
        from pkcs11.util.ec import encode_ec_public_key

        with self._lock:
            try:
                key = self.session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
            except NoSuchKey:
                return None
            return encode_ec_public_key(key)

    def certification_request(self, label: str, subject: x509.Name) -> bytes:
        """A PKCS#10 request (DER) for the key pair under ``label``, signed in the token by its
        private key (proof of possession): ECDSA with SHA-256, asking for a non-repudiation key."""
        import hashlib

        from asn1crypto import csr
        from asn1crypto import keys as asn1_keys
        from pkcs11 import Mechanism, ObjectClass
        from pkcs11.util.ec import encode_ecdsa_signature

        public = self.public_key(label)
        if public is None:
            raise KeyError(label)
        info = csr.CertificationRequestInfo({
            "version": "v1",
            "subject": asn1_x509.Name.load(subject.public_bytes()),
            "subject_pk_info": asn1_keys.PublicKeyInfo.load(public),
            "attributes": [{"type": "extension_request", "values": [[{
                "extn_id": "key_usage", "critical": True,
                "extn_value": {"digital_signature", "non_repudiation"}}]]}],
        })
        with self._lock:
            key = self.session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            raw = key.sign(hashlib.sha256(info.dump()).digest(), mechanism=Mechanism.ECDSA)
        return csr.CertificationRequest({
            "certification_request_info": info, "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": encode_ecdsa_signature(raw)}).dump()

    def pending(self) -> list[str]:
        """Labels of key pairs that wait for their certificate (a request sent to a CA)."""
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            keys = {o[Attribute.LABEL] for o in self.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})}
            certs = {o[Attribute.LABEL] for o in self.session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})}
        return sorted(keys - certs)

    def store_certificate(self, label: str, certificate: x509.Certificate) -> None:
        from cryptography.hazmat.primitives import serialization
        from pkcs11 import Attribute, CertificateType, ObjectClass

        der = certificate.public_bytes(serialization.Encoding.DER)
        with self._lock:
            query = {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}
            for obj in list(self.session.get_objects(query)):
                obj.destroy()
            self.session.create_object({
                Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.ID: label.encode(), Attribute.VALUE: der,
                Attribute.SUBJECT: certificate.subject.public_bytes(),
                Attribute.ISSUER: certificate.issuer.public_bytes(),
                Attribute.SERIAL_NUMBER: certificate.serial_number.to_bytes(20, "big").lstrip(b"\0") or b"\0"})

    def delete(self, label: str) -> int:
        from pkcs11 import Attribute

        with self._lock:
            objects = list(self.session.get_objects({Attribute.LABEL: label}))
            for obj in objects:
                obj.destroy()
            return len(objects)

    # -- lookup --------------------------------------------------------------------------------

    def enrolled(self) -> list[Enrolled]:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            certs = [(o[Attribute.LABEL], o[Attribute.VALUE]) for o in
                     self.session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})]
            keys = {o[Attribute.LABEL] for o in self.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})}
        return sorted((Enrolled(label, x509.load_der_x509_certificate(der), label in keys) for label, der in certs),
                      key=lambda e: e.label)

    def find(self, label: str) -> Enrolled | None:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            certs = list(self.session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}))
            if not certs:
                return None
            has_key = bool(list(self.session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                          Attribute.LABEL: label})))
            return Enrolled(label, x509.load_der_x509_certificate(certs[0][Attribute.VALUE]), has_key)

    def signer(self, enrolled: Enrolled, chain: list[asn1_x509.Certificate]):
        """pyHanko's PKCS#11 signer for this enrollment, made once per certificate."""
        from cryptography.hazmat.primitives import serialization
        from pyhanko.sign.pkcs11 import PKCS11Signer
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        key = (enrolled.label, enrolled.certificate.serial_number)
        with self._lock:
            signer = self._signers.get(key)
            if signer is None:
                cert = asn1_x509.Certificate.load(enrolled.certificate.public_bytes(serialization.Encoding.DER))
                signer = PKCS11Signer(self.session, key_label=enrolled.label, signing_cert=cert, ca_chain=chain,
                                      other_certs_to_pull=(), embed_roots=True,
                                      # hash here, sign the digest in the token (CKM_ECDSA): SoftHSM2
                                      # and many HSMs have no combined CKM_ECDSA_SHA256
                                      use_raw_mechanism=True)
                # the chain only: pyHanko adds the signing certificate itself (once)
                signer._cert_registry = SimpleCertificateStore.from_certs(chain)
                self._signers = {k: v for k, v in self._signers.items() if k[0] != enrolled.label}
                self._signers[key] = signer
            return signer

    def raw_sign(self, label: str, data: bytes) -> bytes:
        """One raw ECDSA operation over the SHA-256 of ``data`` with the key of ``label`` (as the
        signer does; for the benchmark)."""
        import hashlib

        from pkcs11 import Mechanism, ObjectClass

        with self._lock:
            key = self.session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            return key.sign(hashlib.sha256(data).digest(), mechanism=Mechanism.ECDSA)

    def is_extractable(self, label: str) -> bool:
        from pkcs11 import Attribute, ObjectClass

        with self._lock:
            key = self.session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
            return bool(key[Attribute.EXTRACTABLE]) or not bool(key[Attribute.SENSITIVE])
