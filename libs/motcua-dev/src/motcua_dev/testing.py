"""Test helpers, fakes and the platform's pytest plugin (real RabbitMQ, SeaweedFS, both store
backends). The root conftest loads this module as a plugin (``pytest_plugins``), so every test
directory gets the same ``amqp_uri``, ``vhost_uri``, ``publisher``, ``s3_server``/``s3_endpoint``,
``object_store`` and ``store`` (SQLite and MongoDB in turn) fixtures; a test directory overrides
one only to change what it is (the kernel's ``store`` adds the in-memory fake). Where a fixture
does not fit, use the plain functions (context managers), e.g. a reliability test that needs its
own SeaweedFS to stop and start (:func:`private_seaweedfs`), or its own RabbitMQ node to stop
and start (:func:`private_rabbitmq`).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from motcua.objects import ObjectStore
from motcua.settings import PlatformSettings
from motcua_dev import infra
from motcua_dev.devstack import pid_alive


@dataclass
class SettableClock:
    """A use case's clock (``clock()`` is now), set or advanced by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class RecordingPublisher:
    """A publisher that keeps what it is given (service-layer tests with fake ports); ``fail``
    makes the next publishes raise, as a broker that is gone."""

    def __init__(self) -> None:
        self.published: list = []
        self.fail = False

    def publish(self, message, declare_queue=None) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable (test)")
        self.published.append(message)

    def close(self) -> None:
        pass

    def types(self) -> list[str]:
        """The CloudEvents types and work types published, in order."""
        return [m.headers.get("cloudEvents:type") or m.headers.get("motcua-work-type") for m in self.published]


class FakeSealer:
    """The ``motcua.sealing.Sealer`` port for use-case tests: returns the PDF unchanged and records
    who sealed what (``calls``: unit, label); ``fail`` makes it raise as an unreachable signing api.
    Real sealing is tested against the signing api and a SoftHSM2 token (tests/integration)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = False

    def __call__(self, pdf: bytes, unit: str, label: str = "") -> bytes:
        from motcua.errors import Unavailable

        if self.fail:
            raise Unavailable("the signing api does not answer (test)")
        self.calls.append((unit, label))
        return pdf


class MemoryObjects:
    """Object storage in memory with the ObjectStore's content addressing and verified reads
    (service-layer tests); ``fail`` makes calls raise as an unreachable S3 service."""

    part_size = 8 * 1024 * 1024  # as ObjectStore's (uploads shrink it on their copy)

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.fail = False

    def put_bytes(self, prefix: str, data: bytes, media_type: str):
        import hashlib

        from motcua.objects import ObjectRef

        if self.fail:
            raise ConnectionError("S3 unreachable (test)")
        digest = hashlib.sha256(data).hexdigest()
        ref = ObjectRef(f"{prefix}/{digest}", digest, len(data), media_type)
        self.objects[ref.key] = bytes(data)
        return ref

    def get(self, ref) -> bytes:
        import hashlib

        from motcua.objects import IntegrityError, ObjectMissing

        if self.fail:
            raise ConnectionError("S3 unreachable (test)")
        if ref.key not in self.objects:
            raise ObjectMissing("memory", ref.key)
        data = self.objects[ref.key]
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise IntegrityError(ref.key, ref.sha256, hashlib.sha256(data).hexdigest())
        return data

    def open(self, ref, chunk_size: int = 1024 * 1024):
        """As ObjectStore.open: chunks of the verified object."""
        data = self.get(ref)
        return iter([data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""])


def work_data(message_class: type, values: dict):
    """A work message (``motcua.work.v1``) from a plain dict as a test writes it: numbers given
    where the schema has text (a step's ``share``) become text, datetimes become RFC 3339."""
    from google.protobuf import json_format
    from google.protobuf.descriptor import FieldDescriptor

    def plain(value, field):
        if isinstance(value, dict) and field.message_type is not None:
            return fitted(value, field.message_type)
        if isinstance(value, datetime):
            return value.isoformat()
        if field.type == FieldDescriptor.TYPE_STRING and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value

    def fitted(data: dict, descriptor) -> dict:
        out = {}
        for key, value in data.items():
            field = descriptor.fields_by_name.get(key)
            if field is None or value is None:
                continue
            if isinstance(value, list | tuple):
                out[key] = [plain(v, field) for v in value]
            else:
                out[key] = plain(value, field)
        return out

    return json_format.ParseDict(fitted(values, message_class.DESCRIPTOR), message_class())


def memory_units_of_work():
    """A UnitsOfWork on the in-memory store with a recording publisher: the fake ports of a
    service-layer test (``uows.store``, ``uows.outbox`` and ``publisher`` are there to inspect)."""
    from motcua.messaging.outbox import Outbox
    from motcua.store.memory import MemoryStore
    from motcua.unit_of_work import UnitsOfWork

    publisher = RecordingPublisher()
    return UnitsOfWork(MemoryStore(), Outbox(publisher)), publisher


def sqlite_units_of_work(store):
    """:func:`memory_units_of_work` on a real store (a ``SqliteStore`` on disk, whose commits
    motcua.metrics counts): ``(uows, publisher)``."""
    from motcua.messaging.outbox import Outbox
    from motcua.unit_of_work import UnitsOfWork

    publisher = RecordingPublisher()
    return UnitsOfWork(store, Outbox(publisher)), publisher


def sqlite_commits() -> float:
    """The SQLite transactions committed so far with synchronous=FULL (motcua.metrics)."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("motcua_store_commits_total", {"backend": "sqlite", "synchronous": "FULL"}) or 0.0


def handle_as_a_worker(uows, handler, delivery, consumer: str = "test-worker") -> tuple[str, float, bool]:
    """``handler`` run on ``delivery`` as a worker runs it (:class:`motcua.messaging.consuming.
    MessageHandling`, its processed records in ``uows.store``): the outcome, the SQLite commits it
    took and whether the message's processed record is stored."""
    from motcua.messaging.consuming import MessageHandling, ProcessedMessage

    processed = uows.store.collection(ProcessedMessage)
    before = sqlite_commits()
    outcome = MessageHandling(consumer, processed, RecordingPublisher(), [1000]).run(delivery, handler)
    return outcome, sqlite_commits() - before, processed.get(f"{consumer}:{delivery.id}") is not None


@contextlib.contextmanager
def recorded_queries(collection) -> Iterator[list[tuple[dict, list, int | None]]]:
    """The queries a use case asks ``collection`` (find, count, claim) while the block runs, as
    ``(filter, sort, limit)``: hand each to the SQLite collection's ``query_plan`` to check that a
    hot path stays on its indexes whatever the collection holds."""
    asked: list[tuple[dict, list, int | None]] = []
    find, count, claim = collection.find, collection.count, collection.claim

    def finding(filter, sort=(), limit=None):
        asked.append((dict(filter), list(sort), limit))
        return find(filter, sort, limit)

    def counting(filter):
        asked.append((dict(filter), [], None))
        return count(filter)

    def claiming(filter, set_fields, sort=()):
        asked.append((dict(filter), list(sort), 1))
        return claim(filter, set_fields, sort)

    collection.find, collection.count, collection.claim = finding, counting, claiming
    try:
        yield asked
    finally:
        del collection.find, collection.count, collection.claim  # the class's methods again


@dataclass(frozen=True)
class S3Endpoint:
    """Where the tests' S3 answers; ``server`` is set when this session started it."""

    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = False
    server: infra.SeaweedFS | None = None

    def store(self, bucket: str) -> ObjectStore:
        return ObjectStore(endpoint=self.endpoint, access_key=self.access_key,
                           secret_key=self.secret_key, bucket=bucket, secure=self.secure)

    def settings_overrides(self, bucket: str) -> dict[str, object]:
        """Keyword arguments for ``<Settings>.load(**overrides)``."""
        return {"s3_endpoint": self.endpoint, "s3_access_key": self.access_key,
                "s3_secret_key": self.secret_key, "s3_secure": self.secure, "s3_bucket": bucket}

    def env(self, bucket: str) -> dict[str, str]:
        """The same as environment variables, for services started as processes."""
        return {f"MOTCUA_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in self.settings_overrides(bucket).items()}


class AtomicMongomockClient:
    """mongomock's client with every collection call atomic, as a MongoDB server makes each
    single-document operation. mongomock runs a version-checked update or a find-and-modify as a
    find then a write, which threads can interleave: two writers at the same version both
    "succeed", an update a real server never loses. Tests that race writers on the MongoDB
    backend pass it as ``MongoStore(..., client_class=AtomicMongomockClient)``; the calls of
    one client take turns (one lock), cursors are read inside the turn."""

    def __init__(self, *args: Any, **kwargs: Any):
        import mongomock

        self._client = mongomock.MongoClient(*args, **kwargs)
        self._lock = threading.RLock()

    def get_database(self, *args: Any, **kwargs: Any) -> _AtomicDatabase:
        return _AtomicDatabase(self._client.get_database(*args, **kwargs), self._lock)

    def close(self) -> None:
        self._client.close()


class _AtomicDatabase:
    def __init__(self, database: Any, lock: threading.RLock):
        self._database = database
        self._lock = lock

    def get_collection(self, *args: Any, **kwargs: Any) -> _AtomicCollection:
        return _AtomicCollection(self._database.get_collection(*args, **kwargs), self._lock)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)


class _AtomicCollection:
    def __init__(self, collection: Any, lock: threading.RLock):
        self._collection = collection
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._collection, name)
        if not callable(attribute):
            return attribute

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                result = attribute(*args, **kwargs)
                if hasattr(result, "__next__"):  # a cursor: read it in the same turn
                    result = list(result)
                return result

        return atomic


@contextlib.contextmanager
def private_seaweedfs(settings: PlatformSettings | None = None, attempts: int = 3) -> Iterator[S3Endpoint]:
    """A SeaweedFS of our own in a temporary directory on free ports, stopped on exit."""
    settings = settings or PlatformSettings.load()
    with tempfile.TemporaryDirectory(prefix="motcua-s3-") as tmp:
        for attempt in range(attempts):
            # Free ports are picked, released, then bound by weed: another process may win one.
            weed = infra.SeaweedFS(Path(tmp) / f"weed{attempt}", ports=infra.WeedPorts.free(),
                                   access_key=settings.s3_access_key, secret_key=settings.s3_secret_key)
            weed.start()
            try:
                weed.wait_ready()
                break
            except Exception:
                weed.stop()
                if attempt == attempts - 1:
                    raise
        try:
            yield S3Endpoint(weed.endpoint, weed.access_key, weed.secret_key, server=weed)
        finally:
            weed.stop()


@contextlib.contextmanager
def seaweedfs_for_tests(settings: PlatformSettings | None = None) -> Iterator[S3Endpoint]:
    """The configured S3 if it answers with the configured keys (a ``make run`` stack), else a
    private SeaweedFS for the duration."""
    settings = settings or PlatformSettings.load()
    keys = (settings.s3_access_key, settings.s3_secret_key)
    if infra.s3_probe(settings.s3_endpoint, *keys, secure=settings.s3_secure) == "ok":
        yield S3Endpoint(settings.s3_endpoint, *keys, secure=settings.s3_secure)
        return
    with private_seaweedfs(settings) as endpoint:
        yield endpoint


def new_bucket_store(endpoint: S3Endpoint, prefix: str = "test") -> ObjectStore:
    """An ObjectStore on a fresh bucket, so sessions sharing one S3 never see each other's keys."""
    store = endpoint.store(f"{prefix}-{uuid.uuid4().hex[:12]}")
    store.ensure_bucket()
    return store


def drop_bucket(store: ObjectStore) -> None:
    """Delete every object and the bucket (best effort: a reused S3 should not fill up)."""
    client = store.client
    with contextlib.suppress(Exception):
        for obj in client.list_objects(store.bucket, recursive=True):
            client.remove_object(store.bucket, obj.object_name)
        client.remove_bucket(store.bucket)


def ensure_amqp_uri(settings: PlatformSettings | None = None) -> str:
    """The configured AMQP URI, after making sure RabbitMQ answers there (starting it if local)."""
    settings = settings or PlatformSettings.load()
    parts = urlsplit(settings.amqp_uri)
    if not infra.port_open(parts.hostname or "127.0.0.1", parts.port or 5672):
        infra.ensure_rabbitmq(settings.amqp_uri)
    return settings.amqp_uri


RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")  # the Debian package's scripts, not /usr/sbin's su wrappers


class PrivateRabbitMQ:
    """A RabbitMQ node of the test's own, started from the installed ``rabbitmq-server`` package
    as a child process: its own node name, AMQP and distribution ports, data, logs, config and
    Erlang cookie under ``base_dir``. The shared broker (``rabbit@localhost`` on 5672) is never
    touched; only epmd (port 4369), which every node on the machine registers with, is shared.
    :meth:`stop` and :meth:`start` keep the data directory, so durable queues and persistent
    messages survive, as across a real broker restart."""

    def __init__(self, base_dir: str | Path, user: str = "guest", password: str = "guest"):
        self.base_dir = Path(base_dir).resolve()
        self.node = f"motcua-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = infra.free_port()
        self.dist_port = infra.free_port()
        self.user, self.password = user, password
        self.log_path = self.base_dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def amqp_uri(self) -> str:
        return f"amqp://{self.user}:{self.password}@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        base = self.base_dir
        return {
            **os.environ,
            "HOME": str(base / "home"),  # its .erlang.cookie, for the node and for rabbitmqctl
            "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),  # none: no management port
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),  # not /etc's (its NODENAME)
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(base / "plugins-expand"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def _prepare(self) -> None:
        home = self.base_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16))
            cookie.chmod(0o400)
        (self.base_dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = false\n")
        (self.base_dir / "enabled_plugins").write_text("[].\n")
        (self.base_dir / "rabbitmq-env.conf").write_text("")

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <node> args`` with this node's cookie (check=True)."""
        return subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self._env(),
                              check=True, capture_output=True, text=True, timeout=timeout)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 120.0) -> None:
        """Start the node (again, on the same data) and wait until it serves AMQP."""
        if self.alive():
            raise RuntimeError(f"{self.node} already runs")
        self._prepare()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self._env(),
                                          cwd=self.base_dir, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"{self.node} exited; last lines of {self.log_path}:\n{self._tail()}")
            if infra.port_open("127.0.0.1", self.port):
                try:  # the port opens before the node is fully booted
                    self.ctl("await_startup", "--timeout", "30")
                    return
                except subprocess.CalledProcessError:
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.node} did not serve 127.0.0.1:{self.port} within {timeout}s:\n"
                                   f"{self._tail()}")
            time.sleep(0.5)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node cleanly (``rabbitmqctl stop``), SIGTERM then SIGKILL its process group
        if it does not go."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            with contextlib.suppress(subprocess.SubprocessError):
                self.ctl("stop", timeout=timeout)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                proc.wait(timeout / 2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
        proc.wait()
        # rabbitmq-server is a shell that waits for beam: never leave a beam of ours behind it
        if any(pid_alive(pid) for pid in _group_members(proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _group_members(pgid: int) -> list[int]:
    """The processes of a process group (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) == pgid:
                    members.append(int(entry.name))
    return members


@contextlib.contextmanager
def private_rabbitmq(base_dir: str | Path | None = None) -> Iterator[PrivateRabbitMQ]:
    """A :class:`PrivateRabbitMQ` started in ``base_dir`` (else a temporary directory), stopped on
    exit. Needs the Debian ``rabbitmq-server`` package (``make setup`` installs it)."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        raise RuntimeError(f"{RABBIT_BIN / 'rabbitmq-server'} is missing: make setup installs rabbitmq-server")
    with contextlib.ExitStack() as stack:
        if base_dir is None:
            base_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="motcua-rabbit-"))
        broker = PrivateRabbitMQ(base_dir)
        try:
            broker.start()
            yield broker
        finally:
            broker.stop()


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Endpoint]:
    with seaweedfs_for_tests() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def object_store(s3_server: S3Endpoint) -> Iterator[ObjectStore]:
    store = new_bucket_store(s3_server)
    yield store
    drop_bucket(store)


@pytest.fixture(scope="session")
def amqp_uri() -> str:
    return ensure_amqp_uri()


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: S3Endpoint) -> S3Endpoint:
    return s3_server


@pytest.fixture(scope="module")
def vhost_uri(amqp_uri: str, request) -> Iterator[str]:
    """A RabbitMQ vhost of the test module's own (deleted at its end)."""
    from motcua_dev.harness import private_vhost

    with private_vhost(amqp_uri, prefix=f"t-{Path(str(request.node.path)).stem[:30]}") as uri:
        yield uri


@pytest.fixture(scope="module")
def publisher(vhost_uri: str):
    """The platform's publisher (confirms) on the module's vhost."""
    from motcua.messaging.publisher import Publisher

    publisher = Publisher(vhost_uri)
    yield publisher
    publisher.close()


@pytest.fixture
def sqlite_store(tmp_path):
    from motcua.store import SqliteStore

    store = SqliteStore(tmp_path / "store.sqlite3")
    yield store
    store.close()


@pytest.fixture
def mongo_store():
    """MongoDB through mongoengine on mongomock, each call atomic as on a MongoDB server (tests race
    writers), in a database of its own (mongomock clients share one in-memory server)."""
    from motcua.store import MongoStore

    store = MongoStore("mongodb://localhost", db_name=f"t{uuid.uuid4().hex}", client_class=AtomicMongomockClient)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "mongo"])
def store(request):
    """A fresh, empty store of each backend in turn (DESIGN: one contract, two backends)."""
    return request.getfixturevalue(f"{request.param}_store")


def pdf_pages(pdf: bytes) -> list[str]:
    """Each page's paper size as poppler's ``pdfinfo`` names it (``"A4"`` for 595x842 pt), or its
    size in points when it has no name: ``pdf_pages(form) == ["A4"]`` says it fits one A4 page."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(pdf)
        file.flush()
        out = subprocess.run(["pdfinfo", "-f", "1", "-l", "100000", file.name], capture_output=True, text=True,
                             check=True).stdout
    sizes = re.findall(r"^Page +\d+ size: +(.+?) pts(?: \((\w+)\))?$", out, re.MULTILINE)
    return [name or size for size, name in sizes]


def rpc_error(call, *args, **kwargs):
    """The grpc.RpcError ``call(*args, **kwargs)`` must raise; a stub's method gets a 10 s timeout
    unless one is given (a server that hangs fails the test instead of hanging it)."""
    import grpc

    if isinstance(call, grpc.UnaryUnaryMultiCallable | grpc.UnaryStreamMultiCallable
                  | grpc.StreamUnaryMultiCallable | grpc.StreamStreamMultiCallable):
        kwargs.setdefault("timeout", 10)
    with pytest.raises(grpc.RpcError) as raised:
        call(*args, **kwargs)
    return raised.value


# -- a test PKI for mutual TLS ---------------------------------------------------------------------


@dataclass
class MutualTlsPki:
    """A CA, the server's certificate (``localhost``) and agencies' client certificates, made in
    memory for tests of mutual TLS (``cryptography``, imported here only). :meth:`issue` adds a
    client certificate (CN = the agency) of this CA, valid or already expired; :meth:`issue_rogue`
    one of another CA the server does not trust. ``clients`` maps a name to (certificate, key)."""

    ca: bytes
    server_cert: bytes
    server_key: bytes
    clients: dict[str, tuple[bytes, bytes]]
    _ca_key: Any = None
    _ca_name: Any = None

    @classmethod
    def create(cls, agencies: tuple[str, ...] = ()) -> MutualTlsPki:
        from cryptography.hazmat.primitives import serialization

        ca_key, ca_name, ca_cert = _ca("motcua test CA")
        server_key = _key()
        server_cert = _cert("localhost", server_key, ca_name, ca_key, san=True)
        pki = cls(ca_cert.public_bytes(serialization.Encoding.PEM),
                  server_cert.public_bytes(serialization.Encoding.PEM), _pem_key(server_key), {}, ca_key, ca_name)
        for agency in agencies:
            pki.issue(agency)
        return pki

    def issue(self, name: str, cn: str | None = None, expired: bool = False) -> tuple[bytes, bytes]:
        """A client certificate of this CA for ``cn`` (default: ``name``), kept under ``name``."""
        return self._add(name, cn or name, self._ca_name, self._ca_key, expired)

    def crl(self, *names: str) -> bytes:
        """A PEM revocation list of this CA naming the client certificates ``names``."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        now = datetime.now(UTC)
        builder = x509.CertificateRevocationListBuilder().issuer_name(self._ca_name).last_update(now) \
            .next_update(now + timedelta(days=7))
        for name in names:
            serial = x509.load_pem_x509_certificate(self.clients[name][0]).serial_number
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
        return builder.sign(self._ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def issue_rogue(self, name: str, cn: str) -> tuple[bytes, bytes]:
        """A client certificate for ``cn`` from a CA the server does not trust."""
        rogue_key, rogue_name, _ = _ca("somebody else's CA")
        return self._add(name, cn, rogue_name, rogue_key, False)

    def _add(self, name: str, cn: str, issuer_name: Any, issuer_key: Any, expired: bool) -> tuple[bytes, bytes]:
        from cryptography.hazmat.primitives import serialization

        key = _key()
        cert = _cert(cn, key, issuer_name, issuer_key, expired=expired)
        self.clients[name] = (cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))
        return self.clients[name]


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(cn: str, key: Any, issuer_name: Any, issuer_key: Any, ca: bool = False, san: bool = False,
          expired: bool = False) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    start, end = (now - timedelta(days=30), now - timedelta(days=1)) if expired else \
        (now - timedelta(minutes=5), now + timedelta(days=1))
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(issuer_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _ca(cn: str) -> tuple[Any, Any, Any]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return key, name, _cert(cn, key, name, key, ca=True)


# -- signing: the development PKI over HTTP and a SoftHSM2 token ------------------------------------


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory):
    """The development PKI (root + issuing CA, CRLs, OCSP, RFC 3161 TSA, enrollment) served over
    HTTP from a thread on a free port, for the whole session; yields a
    :class:`motcua_dev.pki.DevPkiServer` (``tsa_url``, ``ocsp_url``, ``crl_url``, ``base_url``,
    ``root_pem_file``, ``ca`` to issue or revoke directly, ``env()``)."""
    from motcua_dev.pki import serving

    with serving(tmp_path_factory.mktemp("dev-pki")) as pki:
        yield pki


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory):
    """A fresh SoftHSM2 token of the session's own (``SOFTHSM2_CONF`` set in this process's
    environment for the session); yields a :class:`motcua_dev.hsm.Token` (``env()`` has the
    MOTCUA_PKCS11_* settings)."""
    from motcua_dev.hsm import ensure_token

    token = ensure_token(tmp_path_factory.mktemp("softhsm"), label="motcua-test")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(token.conf)
    yield token
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous
