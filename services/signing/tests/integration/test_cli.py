"""The operator CLI (``python -m signing``) as an operator runs it: a process of its own over a
SoftHSM2 token of the test session and the development PKI served over HTTP.

``list`` shows each key's revocation status beside its expiry, asked of the OCSP responder in the
certificate: good, then revoked after ``revoke``; ``unreachable`` (within ``--timeout``) when the
responder does not answer, never ``good``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from motcua_dev.hsm import ensure_token
from motcua_dev.pki import serving

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
