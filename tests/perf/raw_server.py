"""A bare grpcio server doing, per call, the durable work of a platform call without the platform:
the raw baseline of bench_intake.py (SubmitDossier) and bench_routing.py (Act).

    python tests/perf/raw_server.py PORT WORKERS DB_PATH S3_PUTS PUBLISHES

Per call, in the gRPC thread that took it: ``S3_PUTS`` content-addressed PUTs of the request's bytes
(a bare minio client), one document inserted and committed in SQLite (WAL, synchronous=FULL: an
fsync per commit; every thread and every process on the one file ``DB_PATH``, as an api's server
processes share their service's store file), and ``PUBLISHES`` persistent publishes each waited
for its publisher confirm (kombu). No protobuf decoding, no validation, no unit of work, no outbox.
S3 and RabbitMQ come from the MOTCUA_* environment. Binds 127.0.0.1:PORT with SO_REUSEPORT, so
several of these processes serve one port as an api's server processes do. Prints its port.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import uuid

import grpc
import kombu.connection  # noqa: F401 - imported before the server threads: kombu's lazy imports race
from echo_server import serve
from minio.error import S3Error
from raw_dossier import confirmed_publisher, publish_confirmed, put_object, s3_client, sqlite_file

METHOD = "/bench.Raw/Call"


class RawWork:
    def __init__(self, db_path: str, s3_puts: int, publishes: int):
        self.env = dict(os.environ)
        self.db_path, self.s3_puts, self.publishes = db_path, s3_puts, publishes
        self.s3 = s3_client(self.env) if s3_puts else None  # thread-safe (urllib3's pool)
        self.bucket = self.env["MOTCUA_S3_BUCKET"]
        self._local = threading.local()  # a connection to SQLite and to RabbitMQ per server thread

    def _mine(self):
        local = self._local
        if not hasattr(local, "producer"):  # set last: a thread whose setup failed tries again
            db = sqlite_file(self.db_path)
            local.amqp, local.producer, local.queue = confirmed_publisher(self.env)
            local.db = db
        return local

    def call(self, request: bytes, context) -> bytes:
        mine = self._mine()
        for _ in range(self.s3_puts):
            put_object(self.s3, self.bucket, "raw-api", request)
        doc = json.dumps({"size": len(request), "status": 1, "at": uuid.uuid4().hex})
        mine.db.execute("BEGIN IMMEDIATE")
        mine.db.execute("INSERT INTO raw (id, doc) VALUES (?, ?)", (uuid.uuid4().hex, doc))
        mine.db.execute("COMMIT")
        for _ in range(self.publishes):
            publish_confirmed(mine.producer, mine.queue, doc.encode())
        return b"ok"


def main() -> int:
    port, workers, db_path, s3_puts, publishes = sys.argv[1:6]
    work = RawWork(db_path, int(s3_puts), int(publishes))
    if work.s3 is not None and not work.s3.bucket_exists(work.bucket):
        with contextlib.suppress(S3Error):  # a sibling process made it first
            work.s3.make_bucket(work.bucket)
    handler = grpc.method_handlers_generic_handler("bench.Raw", {
        "Call": grpc.unary_unary_rpc_method_handler(work.call)})
    return serve(handler, int(workers), int(port), reuse_port=True, label="raw")

if __name__ == "__main__":
    sys.exit(main())
