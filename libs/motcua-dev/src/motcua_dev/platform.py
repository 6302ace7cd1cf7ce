"""The processes that make up motcua on one machine, for ``make run`` and the e2e tests.

Each service runs a worker process (nameko; consumes its area queues, relays its outbox);
services with a gRPC API also run an api process (grpcio). Module names only: the kernel does not
import the services.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from collections.abc import Iterable, Mapping

from motcua.messaging.topology import SERVICES
from motcua_dev.devstack import ProcessSpec

# service → gRPC port of its api process under `make run` (services without an API are absent)
API_PORTS: dict[str, int] = {"intake": 50051, "routing": 50052, "signing": 50053, "notify": 50054, "archive": 50055}
# the development PKI (CA certificates, CRLs, OCSP, RFC 3161 TSA, enrollment) under `make run`
PKI_PORT = 8790
READY = r"^READY "
# Every process serves Prometheus metrics on a free port (MOTCUA_METRICS_PORT=0) and prints
# "METRICS <process> <url>" first thing (motcua.metrics).
METRICS_LINE = re.compile(r"^METRICS (\S+) (http://\S+)$", re.M)
# The local SMTP server and SMS gateway stand-in of `make run` (notify's default settings point there).
MAILBOX_PORTS = {"smtp": 8025, "sms": 8026}


def mailbox_spec(directory: str = "var", smtp_port: int = MAILBOX_PORTS["smtp"],
                 sms_port: int = MAILBOX_PORTS["sms"]) -> ProcessSpec:
    """The providers' stand-ins (:mod:`motcua_dev.mailbox`): what notify delivers lands in
    ``<directory>/mail/*.eml`` and ``<directory>/sms/sms.jsonl``."""
    return ProcessSpec(name="mailbox", argv=[sys.executable, "-m", "motcua_dev.mailbox", "--dir", directory,
                                             "--smtp-port", str(smtp_port), "--sms-port", str(sms_port)],
                       ready_pattern=READY)


def api_spec(service: str, env: Mapping[str, str], port: int, name: str | None = None) -> ProcessSpec:
    return ProcessSpec(name=name or f"{service}-api", argv=[sys.executable, "-m", f"{service}.entrypoints.api"],
                       env={**env, "MOTCUA_METRICS_PORT": "0", "MOTCUA_GRPC_PORT": str(port)}, ready_pattern=READY)


def worker_spec(service: str, env: Mapping[str, str], areas: Iterable[str] | None = None,
                name: str | None = None) -> ProcessSpec:
    """A worker of ``service`` for ``areas`` (default: the MOTCUA_AREAS of ``env``, else every
    area of the catalog)."""
    extra = {"MOTCUA_AREAS": ",".join(areas)} if areas else {}
    return ProcessSpec(name=name or f"{service}-worker",
                       argv=[sys.executable, "-m", f"{service}.entrypoints.worker"],
                       env={**env, "MOTCUA_METRICS_PORT": "0", **extra}, ready_pattern=READY)


def platform_specs(env: Mapping[str, str], api_ports: Mapping[str, int] = API_PORTS) -> list[ProcessSpec]:
    """Every api and worker process of the platform, sharing ``env`` (MOTCUA_* settings)."""
    specs = [api_spec(service, env, port) for service, port in api_ports.items()]
    specs += [worker_spec(service, env) for service in SERVICES]
    return specs


def metrics_urls(stack) -> dict[str, str]:
    """process name → the URL of its /metrics, as each process printed it (its latest start)."""
    urls = {}
    for name in stack.specs:
        found = METRICS_LINE.findall(stack.log_path(name).read_text(errors="replace"))
        if found:
            urls[name] = found[-1][1]
    return urls


def scrape(url: str, timeout: float = 10.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a Prometheus text exposition: (series name, sorted labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=timeout) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
