"""Throughput of signing (not a pytest test).

    .venv/bin/python tests/perf/bench_signing.py

Prints, in one run, with a SoftHSM2 token and the development PKI served over HTTP from this
process (as under `make run`):

* raw token signs/s: one ECDSA P-256 operation over a SHA-256 digest with an enrolled token key
  (python-pkcs11, one session, one thread);
* file-key results/s: the same full result (two signatures, timestamps, revocation data, B-LT)
  with pyHanko's SimpleSigner over PEM keys certified by the same CA, in this process;
* token results/s at 1 and 4 concurrent dossiers through the worker's SignerPool (processes = the
  concurrency), each result a two-signature B-LT PDF;
* the ratio of token results/s to raw token signs/s (the goal is ≥ 0.1);
* CPU per raw sign and per in-process result (this process's CPU time): steadier than the rates
  when other work shares the machine.

The OCSP responder and the TSA run in a process of their own (`python -m motcua_dev.pki serve`, as
under `make run`): on a 2-core machine they take a share of the CPU the signing processes would
otherwise have. Runs in about a minute.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fpdf import FPDF
from motcua_dev.hsm import ensure_token
from motcua_dev.infra import free_port
from motcua_dev.pki import DevCa

SECONDS = 8.0  # per measured figure
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CODE = "000.00.12.H56-261207-0001"


def draft() -> bytes:
    pdf = FPDF()
    pdf.add_font("DejaVu", fname=FONT)
    pdf.add_page()
    pdf.set_font("DejaVu", size=14)
    pdf.multi_cell(0, 8, "QUYẾT ĐỊNH cấp giấy phép xây dựng — UBND huyện Bá Thước\n" * 20)
    return bytes(pdf.output())


def request(data: bytes, n: int):
    from signing.domain import SignerRef, SigningRequest

    return SigningRequest(f"bench-{n}", CODE, "ba-thuoc",
                          {"key": "k", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                           "media_type": "application/pdf"},
                          (SignerRef("personal", "sign-ba-thuoc"), SignerRef("seal", "ba-thuoc")))


def rate(work, seconds: float = SECONDS, concurrency: int = 1) -> float:
    return rate_and_cpu(work, seconds, concurrency)[0]


def rate_and_cpu(work, seconds: float = SECONDS, concurrency: int = 1) -> tuple[float, float]:
    """Operations per second, and this process's CPU seconds per operation (the PKI runs in a
    process of its own): on a shared machine the CPU figure moves far less than the rate."""
    stop = time.monotonic() + seconds
    done = [0] * concurrency

    def loop(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            work(i * 1_000_000 + n)
            n += 1
        done[i] = n

    start, cpu_start = time.monotonic(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(loop, range(concurrency)))
    return sum(done) / (time.monotonic() - start), (time.process_time() - cpu_start) / max(1, sum(done))


class FileKeySource:
    """The same key source with PEM key files (pyHanko's SimpleSigner) instead of the token."""

    def __init__(self, token_source, directory: Path, ca):
        from pyhanko.sign.signers import SimpleSigner

        from signing.adapters.pdf import SignerIdentity

        self._token = token_source
        self.lta = False
        self._signers = {}
        for role, signer_id, cn, title in (("personal", "sign-ba-thuoc", "Hà Văn Bình", "Phó Chủ tịch UBND huyện"),
                                           ("seal", "ba-thuoc", "UBND huyện Bá Thước", "")):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = ca.issue(public_key_der=key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
                common_name=cn, organization="UBND huyện Bá Thước", title=title, profile=role)
            key_file, cert_file = directory / f"{signer_id}.key.pem", directory / f"{signer_id}.pem"
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            chain = [directory / "issuing.pem", directory / "root.pem"]
            for name, c in (("issuing.pem", ca.issuing_cert), ("root.pem", ca.root_cert)):
                (directory / name).write_bytes(c.public_bytes(serialization.Encoding.PEM))
            signer = SimpleSigner.load(str(key_file), str(cert_file), ca_chain_files=[str(p) for p in chain])
            self._signers[(role, signer_id)] = (signer, SignerIdentity(cn, title, "UBND huyện Bá Thước", cn))

    def signer(self, ref):
        return self._signers[(ref.role.value, ref.signer_id)]

    def timestamper(self):
        return self._token.timestamper()

    def validation_context(self):
        return self._token.validation_context()


@contextlib.contextmanager
def pki_process(directory: Path):
    """The development PKI as a process of its own, as under `make run`: the CPU this process
    spends is then the signing's alone."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "motcua_dev.pki", "serve", "--dir", str(directory), "--port",
                             str(port)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            raise SystemExit(f"the dev PKI did not start: {line!r}")
        base_url = f"http://127.0.0.1:{port}"
        yield SimpleNamespace(base_url=base_url, tsa_url=f"{base_url}/tsa", root_pem_file=directory / "root.pem",
                              ca=DevCa(directory, base_url))
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="bench-signing-"))
    token = ensure_token(base / "softhsm", label="bench")
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    from signing.adapters.keys import CaClient, Enrollment, Subject, TokenKeySource
    from signing.adapters.pdf import apply_signatures
    from signing.adapters.signer_pool import EngineConfig, SignerPool
    from signing.adapters.token import TokenKeys
    from signing.domain import SignerRole

    data = draft()
    with pki_process(base / "pki") as pki:
        keys = TokenKeys(token.module, token.label, token.pin_file)
        enrollment = Enrollment(keys, CaClient(pki.base_url))
        enrollment.enroll(SignerRole.PERSONAL, "sign-ba-thuoc",
                          Subject("Hà Văn Bình", "UBND huyện Bá Thước", "Phó Chủ tịch UBND huyện", "Thanh Hóa"))
        enrollment.enroll(SignerRole.SEAL, "ba-thuoc", Subject("UBND huyện Bá Thước", "UBND huyện Bá Thước"))
        print(f"draft PDF {len(data)} bytes; TSA and OCSP at {pki.base_url}; {os.cpu_count()} CPUs")

        digest_input = os.urandom(1024)
        raw, raw_cpu = rate_and_cpu(lambda n: keys.raw_sign("official:sign-ba-thuoc", digest_input), seconds=3)
        print(f"raw token signs/s (ECDSA P-256, SoftHSM2, 1 thread):          {raw:10.1f}"
              f"   ({raw_cpu * 1000:.2f} ms CPU each)")

        token_source = TokenKeySource(keys, pki.root_pem_file.read_bytes(), pki.tsa_url)
        files = FileKeySource(token_source, base, pki.ca)
        apply_signatures(data, request(data, 0), files)  # warm: font, imports
        file_rate = rate(lambda n: apply_signatures(data, request(data, n), files))
        print(f"file-key B-LT two-signature results/s (in process, 1 at a time): {file_rate:8.2f}")
        in_process, cpu = rate_and_cpu(lambda n: apply_signatures(data, request(data, n), token_source))
        print(f"token B-LT two-signature results/s (in process, 1 at a time):   {in_process:8.2f}"
              f"   ({cpu * 1000:.0f} ms CPU each = {raw_cpu / cpu:.4f} of a raw sign's CPU per result)")
        keys.close()

        config = EngineConfig(token.module, token.label, str(token.pin_file), str(pki.root_pem_file), pki.tsa_url)
        for concurrency in (1, 4):
            pool = SignerPool(config, concurrency)
            warm = threading.Barrier(concurrency + 1)

            def warm_one(_, pool=pool, warm=warm):
                pool(data, request(data, 0))
                warm.wait()
            threads = [threading.Thread(target=warm_one, args=(i,)) for i in range(concurrency)]
            for t in threads:
                t.start()
            warm.wait()
            got = rate(lambda n, pool=pool: pool(data, request(data, n)), concurrency=concurrency)
            pool.close()
            print(f"token B-LT results/s, {concurrency} concurrent dossiers (pool of {concurrency}):   {got:8.2f}"
                  f"   = {got / raw:.4f} of raw token signs/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
