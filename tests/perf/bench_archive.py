"""Archive throughput against a SeaweedFS of its own (not a pytest test).

    .venv/bin/python tests/perf/bench_archive.py

Prints, in the same run and on the same S3:
- packages/s of the Archivist (3 documents of 1 MB each + a result: read and verify the documents,
  build the deterministic BagIt tar, write two locked copies, read both back and hash them, the
  ledger entry) beside raw S3 PUT/s of the same package bytes to a plain bucket;
- fixity MB/s (re-hash both copies of every package through the Fixity use case) beside a raw
  GET-and-hash loop over the same objects.
Single process; a few tens of seconds.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from motcua_dev import infra  # noqa: E402
from motcua_dev.testing import memory_units_of_work  # noqa: E402
from perfkit import pdf_document  # noqa: E402

from archive.adapters.bags import build_package  # noqa: E402
from archive.adapters.records import DossierLifeRecord, LedgerRecord  # noqa: E402
from archive.adapters.vaults import S3Vault  # noqa: E402
from archive.application.archiving import ArchiveDossier, ArchivePolicy, Archivist  # noqa: E402
from archive.application.fixity import Fixity  # noqa: E402
from motcua.objects import ObjectStore  # noqa: E402

PACKAGES = 12
DOC_SIZE = 1024 * 1024


def main() -> int:
    weed = infra.SeaweedFS(tempfile.mkdtemp(prefix="bench-archive-"), ports=infra.WeedPorts.free(),
                           access_key="bench", secret_key="bench-secret")
    weed.start()
    try:
        weed.wait_ready()

        def store(bucket: str) -> ObjectStore:
            return ObjectStore(endpoint=weed.endpoint, access_key="bench", secret_key="bench-secret", bucket=bucket)

        docs = store("docs")
        docs.ensure_bucket()
        vaults = [S3Vault("primary", store("archive")), S3Vault("copy", store("archive-copy"))]
        for vault in vaults:
            vault.ensure()
        uows, _ = memory_units_of_work()
        now = datetime.now(UTC).replace(microsecond=0)
        archivist = Archivist(uows, docs, vaults, build_package, LedgerRecord, DossierLifeRecord,
                              ArchivePolicy(default_retention="1"))
        commands = []
        for n in range(PACKAGES):
            documents = tuple({**docs.put_bytes(f"intake/{n}", pdf_document(DOC_SIZE, seed=n * 10 + i),
                                                "application/pdf").to_dict(), "name": f"doc-{i}.pdf"}
                              for i in range(3))
            result = docs.put_bytes(f"signing/{n}", pdf_document(100_000, seed=n), "application/pdf").to_dict()
            commands.append(ArchiveDossier(f"d{n}-{uuid.uuid4().hex[:6]}", f"000.00.06.H56-261201-{n:04d}", "bim-son",
                                           "bim-son", "1.004616", documents, result, now - timedelta(days=5), now))
        archivist(commands[0])  # warm-up (connections, imports)
        start = time.perf_counter()
        for command in commands[1:]:
            archivist(command)
        archive_rate = (len(commands) - 1) / (time.perf_counter() - start)
        entries = uows.store.collection(LedgerRecord).find({}, sort=[("seq", 1)])
        package_size = entries[-1]["package_size"]

        # raw PUT of the same bytes, to a plain bucket, same number of objects
        raw = store("raw")
        raw.ensure_bucket()
        packed = b"".join(vaults[0].read(entries[-1]["copies"][0]["key"], entries[-1]["copies"][0]["version_id"]))
        start = time.perf_counter()
        for n in range(len(commands) - 1):
            raw.client.put_object(raw.bucket, f"raw/{n}", io.BytesIO(packed), len(packed),
                                  part_size=raw.part_size)
        put_rate = (len(commands) - 1) / (time.perf_counter() - start)

        # fixity: both copies of every package, through the use case
        fixity = Fixity(uows, vaults, LedgerRecord, batch=len(entries), clock=lambda: now + timedelta(days=400))
        start = time.perf_counter()
        results = fixity.sweep()
        fixity_seconds = time.perf_counter() - start
        assert len(results) == len(entries) and all(r["state"] == "ok" for r in results)
        checked_mb = 2 * sum(e["package_size"] for e in entries) / 1e6

        # raw GET-and-hash of the same versions
        start = time.perf_counter()
        for entry in entries:
            for vault, copy in zip(vaults, entry["copies"], strict=True):
                digest = hashlib.sha256()
                for chunk in vault.store.open_version(copy["key"], copy["version_id"]):
                    digest.update(chunk)
        raw_seconds = time.perf_counter() - start

        print(f"package: 3 x {DOC_SIZE // 1024} KB documents + result, tar {package_size / 1e6:.2f} MB")
        print(f"archive: {archive_rate:6.2f} packages/s (build + 2 locked copies written, read back and "
              f"hashed + ledger entry)")
        print(f"raw S3 PUT of the same bytes: {put_rate:6.2f} objects/s "
              f"(archive = {archive_rate / put_rate:.0%} of raw)")
        print(f"fixity: {checked_mb / fixity_seconds:7.1f} MB/s over {2 * len(entries)} copies "
              f"(incl. the latest-version check)")
        print(f"raw GET + SHA-256: {checked_mb / raw_seconds:7.1f} MB/s "
              f"(fixity = {raw_seconds / fixity_seconds:.0%} of raw)")
        return 0
    finally:
        weed.stop()


if __name__ == "__main__":
    sys.exit(main())
