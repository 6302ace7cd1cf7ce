"""Typed settings, one object per service, read from ``MOTCUA_*`` environment variables.

Nothing here reads the environment at import time: a process calls ``<Settings>.load()`` once at
start-up and passes the object down. Every field carries a description; the README's
configuration table is generated from these classes (``python -m motcua.settings``) and a test
keeps the two in step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from motcua.areas import catalog_areas

ENV_PREFIX = "MOTCUA_"
# The sample catalog of a source checkout (services/intake/catalog/thanh-hoa); images set
# MOTCUA_CATALOG_PATH or MOTCUA_AREAS instead.
SAMPLE_CATALOG = Path(__file__).resolve().parents[4] / "services" / "intake" / "catalog" / "thanh-hoa"


@functools.lru_cache(maxsize=8)
def _catalog_areas(path: Path) -> list[str]:
    return catalog_areas(path)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class PlatformSettings(BaseSettings):
    """Settings every service shares. Subclasses add their own and set ``service``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service: ClassVar[str] = "platform"

    amqp_uri: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/",
        description="RabbitMQ connection URI (work queues and the public event exchange).",
    )
    areas: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated areas (the district-level unit a dossier's receiving unit lies in, or the "
        "province for province-level units) this process serves: a worker consumes their queues, an api accepts "
        "dossiers only for units in them. Empty: every area of the catalog. Run one worker per area to scale an "
        "area on its own.",
    )
    catalog_path: Path | None = Field(
        None, description="Procedure catalog: a YAML file, or a directory whose `*.yaml`, `*.yml` and `*.json` "
        "files together form the catalog; empty: the bundled Thanh Hóa sample, services/intake/catalog/thanh-hoa/. "
        "Intake loads all of it; the other services read its units to know the areas. Check it with "
        "`python -m intake.catalog_cli validate PATH`.")
    mongo_uri: str | None = Field(
        None,
        description="MongoDB URI. When set, metadata goes to MongoDB through mongoengine; "
        "when empty, to the embedded SQLite store.",
    )
    data_dir: Path = Field(
        Path("var/data"),
        description="Directory of the embedded SQLite store (one database file per service).",
    )
    s3_endpoint: str = Field("127.0.0.1:8333", description="S3 endpoint host:port (MinIO, SeaweedFS).")
    s3_access_key: str = Field("motcua", description="S3 access key.")
    s3_secret_key: str = Field("motcua-dev-secret", description="S3 secret key.")
    s3_secure: bool = Field(False, description="Use HTTPS for S3.")
    s3_region: str = Field("us-east-1", description="S3 region name used for request signing.")
    s3_bucket: str = Field("motcua", description="Bucket holding every service's objects under its own prefix.")
    grpc_host: str = Field("127.0.0.1", description="Address the gRPC api process binds.")
    grpc_port: int = Field(0, description="Port of the gRPC api process (0 picks a free port and prints it).")
    grpc_reflection: bool = Field(True, description="Serve gRPC server reflection (turn off in production).")
    grpc_workers: int = Field(16, description="Thread pool size of the gRPC api process.")
    api_processes: int = Field(
        0, ge=0, description="Server processes of a service's api, all on the gRPC port (SO_REUSEPORT: the "
        "kernel spreads connections over them), each with its own connections to the store, S3 and the "
        "broker; one metrics endpoint and one health port for them all. A process serves about one core "
        "(Python's GIL). 0: as many as the CPUs the process may use (its CPU affinity and cgroup CPU limit); "
        "1: the api serves in its own process, as a single server.")
    grpc_tls_cert: Path | None = Field(
        None, description="PEM certificate chain of the gRPC server; with the key and the client CA it "
        "turns on mutual TLS (agencies present client certificates).")
    grpc_tls_key: Path | None = Field(None, description="PEM private key of the gRPC server.")
    grpc_tls_client_ca: Path | None = Field(
        None, description="PEM CA certificate(s) that issue agencies' client certificates.")
    grpc_tls_crl: Path | None = Field(
        None, description="PEM certificate revocation list(s) of that CA, checked to be signed by it: a caller "
        "whose certificate is listed is refused (UNAUTHENTICATED) whatever the method. Read at start-up: "
        "restart the api processes after publishing a new list.")
    grpc_access_list: Path | None = Field(
        None, description="YAML access list: which agency (client certificate CN) may call which methods "
        "for which areas. Empty: every caller may call everything (development only).")
    signing_address: str = Field(
        "127.0.0.1:50053", description="host:port of the signing api (SigningService): intake and routing seal "
        "every form they issue there (SealDocument) before storing it; archive has every package's signed PDFs "
        "validated there (ValidatePdf).")
    seal_timeout_s: float = Field(30.0, description="Deadline of one SealDocument call (then the form is retried).")
    grpc_client_cert: Path | None = Field(
        None, description="PEM client certificate this service presents to the platform's other apis (mutual "
        "TLS; its CN is the service's name in their access lists, e.g. motcua-intake).")
    grpc_client_key: Path | None = Field(None, description="PEM private key of MOTCUA_GRPC_CLIENT_CERT.")
    grpc_client_ca: Path | None = Field(
        None, description="PEM CA certificate(s) of the platform apis' server certificates; set: calls to them "
        "use TLS (with the client certificate when one is set).")
    retry_delays_ms: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [500, 2000, 10000],
        description="Comma-separated delays before each retry of a failed message; "
        "after the last one the message is parked in the queue's .dlq.",
    )
    prefetch_count: int = Field(10, description="Unacknowledged messages a worker holds per queue.")
    outbox_relay_interval_s: float = Field(
        1.0, description="How often the worker's relay sweeps for events a crash left pending."
    )
    outbox_grace_s: float = Field(
        2.0, description="Age a pending event must reach before the relay publishes it. The write "
        "that added it publishes it itself right after the write, but only within the first half of "
        "this time (after that it leaves it to the relay), so that the two do not both publish it.",
    )
    log_level: str = Field("INFO", description="Log level (JSON lines on stderr).")
    metrics_port: int | None = Field(
        None, description="Port of the process's Prometheus metrics (HTTP `/metrics`; a worker also serves "
        "`/readyz` and `/livez` there). Empty: no metrics server; 0: a free port, printed at start.")
    metrics_host: str = Field("127.0.0.1", description="Address the metrics server binds.")
    otlp_endpoint: str | None = Field(
        None, description="OpenTelemetry collector's OTLP/HTTP base URL (e.g. `http://otel-collector:4318`): "
        "each process then exports a span per gRPC call and per delivery, under the `traceparent` it "
        "received. Empty: no traces.")
    grpc_health_port: int | None = Field(
        None, description="Port of a second, plaintext gRPC server of the api process serving only "
        "`grpc.health.v1.Health`: what the kubelet probes while the api port asks for client certificates. "
        "Empty: none.")
    consumer_lost_s: float = Field(
        300.0, description="A worker's `/livez` fails once one of its queues has had no live consumer on the "
        "broker for this long (its `/readyz` fails at once).")
    queue_type: str = Field(
        "classic", pattern="^(classic|quorum)$",
        description="Type of the work, retry and parking queues: `classic`, or `quorum` (replicated; RabbitMQ "
        ">= 3.10 cluster). Only for new queues: RabbitMQ refuses to redeclare a queue with another type "
        "(deploy/README.md tells how to move).")

    clock_offset_s: float = Field(
        0.0, description="Tests and `make demo` only, never in production: seconds added to the clock by "
        "which intake and routing date dossiers and count their deadlines (an e2e test moves the platform to a "
        "chosen day to check due dates against hand-computed ones; `make demo` moves `make run` past a step's "
        "deadline to see form 04).",
    )

    _split_lists = field_validator("areas", "retry_delays_ms", mode="before")(_split_csv)

    @classmethod
    def load(cls, **overrides: object) -> PlatformSettings:
        """Read the environment now (never at import time)."""
        return cls(**overrides)

    def clock(self) -> Callable[[], datetime]:
        """The clock the domain reads: now, moved by ``clock_offset_s`` (0 outside tests)."""
        offset = timedelta(seconds=self.clock_offset_s)
        return lambda: datetime.now(UTC) + offset

    @property
    def catalog_file(self) -> Path:
        """The catalog's file or directory."""
        return self.catalog_path or SAMPLE_CATALOG

    def served_areas(self) -> list[str]:
        """The areas this process serves: the ``areas`` setting, or every area of the catalog."""
        if self.areas:
            return list(self.areas)
        return _catalog_areas(self.catalog_file)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / f"{self.service}.sqlite3"


def settings_table(classes: list[type[PlatformSettings]]) -> str:
    """The README's configuration table, in Markdown."""
    rows = ["| variable | services | default | meaning |", "|---|---|---|---|"]
    seen: dict[str, list[str]] = {}
    fields: dict[str, tuple[object, str]] = {}
    for cls in classes:
        for name, info in cls.model_fields.items():
            seen.setdefault(name, []).append(cls.service)
            default = info.default_factory() if info.default_factory else info.default
            if isinstance(default, list):
                default = ",".join(str(d) for d in default)
            fields[name] = (default, info.description or "")
    everyone = {cls.service for cls in classes}
    for name, services in seen.items():
        default, description = fields[name]
        who = "all" if set(services) == everyone else ", ".join(services)
        shown = "" if default in (None, "") else f"`{default}`"
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {who} | {shown} | {description} |")
    return "\n".join(rows)
