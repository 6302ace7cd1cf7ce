"""The processes that make up motcua on one machine, for ``make run`` and the e2e tests.

Each service runs a worker process (nameko; consumes its area queues, relays its outbox);
services with a gRPC API also run an api process (grpcio). Module names only: the kernel does not
import the services.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from motcua.messaging.topology import SERVICES
from motcua_dev.devstack import ProcessSpec, Stack

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
    """The api process of ``service`` on ``port``: one server process unless ``env`` sets
    MOTCUA_API_PROCESSES. On one machine every api and worker shares the same few cores, and the
    tests' and ``make run``'s apis serve a client or two: a process per core each (the setting's
    default, for a pod of its own) would double their processes and start-up time for nothing."""
    return ProcessSpec(name=name or f"{service}-api", argv=[sys.executable, "-m", f"{service}.entrypoints.api"],
                       env={"MOTCUA_API_PROCESSES": "1", **env, "MOTCUA_METRICS_PORT": "0",
                            "MOTCUA_GRPC_PORT": str(port)}, ready_pattern=READY)


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


# -- moving the platform's clock (tests and the demo; MOTCUA_CLOCK_OFFSET_S is never set in production)

CLOCKED_SERVICES = ("intake", "routing", "notify", "archive")  # their settings.clock() dates what they record


def move_clock(stack: Stack, offset_s: float, extra_env: Mapping[str, str] | None = None) -> list[str]:
    """The platform's time becomes now + ``offset_s``: every process that reads the clock restarts
    with ``MOTCUA_CLOCK_OFFSET_S`` (and ``extra_env``), so a step left open really runs late by the
    calendar and routing's SLA sweep sees it so. Signing keeps the real time: certificates, OCSP
    and timestamps are checked against it. Returns the processes restarted, once ready."""
    env = {"MOTCUA_CLOCK_OFFSET_S": f"{offset_s:.3f}", **(extra_env or {})}
    return _restart(stack, {name: {**stack.specs[name].env, **env} for name in clocked(stack)})


def clocked(stack: Stack) -> list[str]:
    return [name for name in stack.specs if name.split("-")[0] in CLOCKED_SERVICES]


def _restart(stack: Stack, envs: Mapping[str, Mapping[str, str]]) -> list[str]:
    for name, env in envs.items():
        stack.specs[name] = replace(stack.specs[name], env=dict(env))
        stack.restart(name)
    stack.wait_ready(timeout=120, names=list(envs))
    return list(envs)


class ClockControl:
    """How ``make demo`` moves ``make run``'s clock: it writes ``{"offset_s": N}`` to ``path``;
    ``make run`` polls the file and restarts the processes that read the clock with that offset
    (and the SLA sweep every second while the clock is moved; back to 0, as they started), then
    writes ``{"applied": N}`` to ``<path>.applied`` for the demo to wait on."""

    @classmethod
    def of(cls, var: Path) -> ClockControl:
        """``make run``'s, under its ``var/`` directory."""
        return cls(Path(var) / "run" / "clock.json")

    def __init__(self, path: Path):
        self.path = Path(path)
        self.applied_path = self.path.with_name(self.path.name + ".applied")
        self._applied: float | None = None
        self._started: dict[str, dict[str, str]] = {}  # the processes' environment as make run started them

    def request(self, offset_s: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.applied_path.unlink(missing_ok=True)
        self.path.write_text(json.dumps({"offset_s": offset_s}))

    def applied(self) -> float | None:
        """The offset ``make run`` has applied since the last request, or None."""
        try:
            return float(json.loads(self.applied_path.read_text())["applied"])
        except (OSError, ValueError, KeyError):
            return None

    def poll(self, stack: Stack, say=print) -> None:
        """``make run``'s side: apply an offset requested since the last one applied."""
        try:
            wanted = float(json.loads(self.path.read_text())["offset_s"])
        except (OSError, ValueError, KeyError):
            return
        if self.applied_path.exists():
            return  # applied already (by this make run or, before a restart of it, the last one)
        if wanted or self._applied:
            self._started = self._started or {name: dict(stack.specs[name].env) for name in clocked(stack)}
            say(f"[run] the platform's clock moves to now + {wanted / 86400:.2f} days (MOTCUA_CLOCK_OFFSET_S, "
                f"development only): restarting {', '.join(self._started)}")
            moved = {"MOTCUA_CLOCK_OFFSET_S": f"{wanted:.3f}", "MOTCUA_SLA_SWEEP_INTERVAL_S": "1"} if wanted else {}
            _restart(stack, {name: {**env, **moved} for name, env in self._started.items()})
            say(f"[run] the clock is now + {wanted / 86400:.2f} days")
        self._applied = wanted
        self.applied_path.write_text(json.dumps({"applied": wanted}))
