"""The operator CLI (``python -m signing``) as an operator runs it: a process of its own over a
SoftHSM2 token of the test session and the development PKI served over HTTP.

``list`` shows each key's revocation status beside its expiry, asked of the OCSP responder in the
certificate: good, then revoked after ``revoke``; ``unreachable`` (within ``--timeout``) when the
responder does not answer, never ``good``.

Enrolment with another CA: ``enroll --csr-out`` makes the key in the token and writes its PKCS#10
request, the CA (here the dev PKI's ``/csr``) certifies it, ``import-cert`` checks and stores the
certificate, and the key then signs; a certificate for another key or from an untrusted CA is
refused.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from motcua_dev.harness import sample_pdf
from motcua_dev.hsm import ensure_token
from motcua_dev.pki import DevCa, serving

from signing.adapters.keys import TokenKeySource
from signing.adapters.pdf import apply_seal, validate_pdf
from signing.adapters.token import TokenKeys
from signing.domain import SealRequest

pytestmark = pytest.mark.integration

UNIT = "UBND huyện Bá Thước"


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "signing", *args], env=env, capture_output=True, text=True,
                         timeout=120)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def listed(env: dict[str, str], *args: str) -> dict[str, str]:
    """label → the rest of its ``list`` line."""
    lines = cli(env, "list", *args).stdout.splitlines()
    return {line.split()[0]: line for line in lines if line.strip()}


def token_env(softhsm_token, label: str, pki_env: dict[str, str]) -> dict[str, str]:
    """The environment of a CLI on a token of its own (in the session's SoftHSM2 directory)."""
    token = ensure_token(softhsm_token.conf.parent, label=label)
    return {**os.environ, **token.env(), **pki_env}


@pytest.fixture(scope="module")
def env(softhsm_token, dev_pki) -> dict[str, str]:
    env = token_env(softhsm_token, "motcua-cli", dev_pki.env())
    cli(env, "enroll", "seal", "ba-thuoc", "--unit-name", UNIT)
    cli(env, "enroll", "official", "sign-ba-thuoc", "--name", "Hà Văn Bình", "--title", "Phó Chủ tịch UBND huyện",
        "--unit-name", UNIT)
    return env


def test_list_shows_expiry_and_good_from_ocsp_then_revoked_after_revoke(env):
    before = listed(env)
    assert set(before) == {"official:sign-ba-thuoc", "seal:ba-thuoc"}
    for line in before.values():
        assert "(valid) revocation: good" in line, line
        assert " until 20" in line, line
    revoked = cli(env, "revoke", "official", "sign-ba-thuoc", "--reason", "key_compromise")
    assert "revoked at" in revoked.stdout
    after = listed(env)
    assert "revocation: revoked (since " in after["official:sign-ba-thuoc"], after
    assert "key_compromise" in after["official:sign-ba-thuoc"]
    assert after["seal:ba-thuoc"].endswith("revocation: good"), after


def test_list_says_unreachable_when_the_responder_does_not_answer_in_time(softhsm_token, tmp_path: Path):
    # a CA whose OCSP responder then falls silent: its port accepts connections and never answers
    with serving(tmp_path / "pki") as pki:
        env = token_env(softhsm_token, "motcua-cli-offline", pki.env())
        cli(env, "enroll", "seal", "ba-thuoc", "--unit-name", UNIT)
        port = int(pki.base_url.rsplit(":", 1)[1])
    with socket.socket() as silent:
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", port))
        silent.listen(8)
        line = listed(env, "--timeout", "1")["seal:ba-thuoc"]
    assert "revocation: unreachable (" in line and f"127.0.0.1:{port}/ocsp" in line, line
    assert "timed out" in line, line


def certify(base_url: str, csr: Path, profile: str) -> bytes:
    """What a CA does with the request: the dev PKI's ``POST /csr``."""
    request = urllib.request.Request(f"{base_url}/csr?profile={profile}", data=csr.read_bytes(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own PKI
        return response.read()


@pytest.fixture(scope="module")
def session_token_env(softhsm_token, dev_pki) -> dict[str, str]:
    """The CLI on the session token, the one this process signs with."""
    return {**os.environ, **softhsm_token.env(), **dev_pki.env()}


def test_enrolment_with_another_ca_by_certification_request(session_token_env, softhsm_token, dev_pki, tmp_path):
    env, csr = session_token_env, tmp_path / "xa-ha-long.csr"
    out = cli(env, "enroll", "seal", "xa-ha-long", "--unit-name", "UBND xã Hà Long", "--csr-out", str(csr)).stdout
    assert "import-cert seal:xa-ha-long CERT.pem" in out
    request = x509.load_pem_x509_csr(csr.read_bytes())
    assert request.is_signature_valid  # signed in the token by the key it asks a certificate for
    assert request.subject.rfc4514_string() == "CN=UBND xã Hà Long,O=UBND xã Hà Long,ST=Thanh Hóa,C=VN"
    assert "waiting for its certificate" in listed(env)["seal:xa-ha-long"]

    cert = tmp_path / "xa-ha-long.pem"
    cert.write_bytes(certify(dev_pki.base_url, csr, "seal"))
    imported = cli(env, "import-cert", "seal:xa-ha-long", str(cert)).stdout
    assert imported.startswith("seal:xa-ha-long: CN=UBND xã Hà Long"), imported
    assert "(valid) revocation: good" in listed(env)["seal:xa-ha-long"]

    # the key now signs: a form sealed with it, valid and trusted at B-LT
    keys = TokenKeys(softhsm_token.module, softhsm_token.label, softhsm_token.pin_file)
    try:
        source = TokenKeySource(keys, dev_pki.root_pem_file.read_bytes(), dev_pki.tsa_url)
        sealed = apply_seal(sample_pdf("Mau 01"), SealRequest("xa-ha-long", "Mẫu 01"), source)
    finally:
        keys.close()
    (report,) = validate_pdf(sealed.data, [dev_pki.root_pem_file.read_bytes()])
    assert (report.signer_name, report.level, report.verdict) == ("UBND xã Hà Long", "B-LT", "valid"), report


def test_import_cert_refuses_a_certificate_for_another_key_or_from_an_untrusted_ca(session_token_env, dev_pki,
                                                                                  tmp_path):
    env = session_token_env
    mine, other = tmp_path / "mine.csr", tmp_path / "other.csr"
    cli(env, "enroll", "official", "sign-xa-ha-long", "--name", "Lê Thị Lan", "--unit-name", "UBND xã Hà Long",
        "--csr-out", str(mine))
    cli(env, "enroll", "official", "sign-xa-ha-long-2", "--name", "Lê Văn Nam", "--unit-name", "UBND xã Hà Long",
        "--csr-out", str(other))
    wrong_key = tmp_path / "other.pem"
    wrong_key.write_bytes(certify(dev_pki.base_url, other, "personal"))
    refused = cli(env, "import-cert", "official:sign-xa-ha-long", str(wrong_key), check=False)
    assert refused.returncode == 1 and "certifies no key of 'official:sign-xa-ha-long'" in refused.stderr

    stranger = DevCa(tmp_path / "stranger-ca", "http://127.0.0.1:9")  # a CA nobody here trusts
    untrusted = tmp_path / "untrusted.pem"
    untrusted.write_bytes(stranger.sign_csr(mine.read_bytes(), profile="personal").public_bytes(Encoding.PEM))
    refused = cli(env, "import-cert", "official:sign-xa-ha-long", str(untrusted), check=False)
    assert refused.returncode == 1 and "does not chain to MOTCUA_TRUST_ROOTS" in refused.stderr, refused.stderr
    assert "waiting for its certificate" in listed(env)["official:sign-xa-ha-long"]  # nothing stored
