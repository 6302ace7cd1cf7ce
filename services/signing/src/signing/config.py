"""Settings of the signing service (``MOTCUA_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from motcua.settings import PlatformSettings


class SigningSettings(PlatformSettings):
    service: ClassVar[str] = "signing"

    pkcs11_module: str = Field(
        "/usr/lib/softhsm/libsofthsm2.so", description="PKCS#11 module (shared library) of the token or HSM that "
        "holds the officials' and the units' signing keys (SoftHSM2 in development; the vendor's module of a "
        "network HSM or USB token in production). SoftHSM2 also reads SOFTHSM2_CONF.")
    pkcs11_token: str = Field("motcua-dev", description="Label of the PKCS#11 token holding the signing keys.")
    pkcs11_pin_file: Path = Field(
        Path("var/softhsm/pin"), description="File holding the token's user PIN (mode 0600; read at start, "
        "never logged).")
    tsa_url: str | None = Field(
        None, description="RFC 3161 time-stamping authority URL (signing and archive): signing timestamps "
        "every signature there (required: the signing worker does not start without it); archive timestamps "
        "its ledger head there (unset: the ledger is not timestamped, and says so).")
    pki_url: str = Field(
        "http://127.0.0.1:8790", description="The CA's enrollment API (POST /issue, /revoke), used by "
        "`python -m signing enroll|revoke`; the development CA of motcua_dev.pki under `make run`.")
    trust_roots: Path | None = Field(
        None, description="PEM root certificates (signing and archive): signing validates its signers' chains "
        "and the SigningService API validates documents against them (required by signing); archive's "
        "`verify-ledger` checks the TSA's certificate chains to them (unset: only the token's imprint and "
        "signature are checked).")
    signing_lta: bool = Field(
        False, description="Add a document timestamp after the seal (PAdES B-LTA) instead of stopping at B-LT.")
    signing_revocation: bool = Field(
        True, description="Fetch the signers' revocation data (OCSP/CRL from the URLs in their certificates) "
        "before signing and embed it (PAdES B-LT); off: B-T only, no revocation check (never in production).")
    signing_processes: int = Field(
        2, description="Processes of the signing worker's pool (each opens the token and its signers once); "
        "0 signs in the worker process itself.")
    signing_api_processes: int = Field(
        1, description="Processes of the SigningService api's sealing pool (SealDocument: the forms intake "
        "and routing issue, sealed by their unit); 0 seals in the api process itself, one at a time.")
    signing_timeout_s: float = Field(
        10.0, description="Timeout of each call to the TSA, OCSP responder and CRL distribution point.")
    signing_max_document_mb: float = Field(
        20.0, description="Largest PDF the SigningService API validates (INVALID_ARGUMENT above).")
    pki_dir: Path = Field(Path("var/pki"), description="Directory of the development PKI (`make run` serves it "
                          "over HTTP on port 8790: CA certificates, CRLs, OCSP, TSA, enrollment).")
