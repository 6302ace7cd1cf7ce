"""Kubernetes probe of a worker process: exits 0 while the pod holds an established TCP connection
to the broker port of MOTCUA_AMQP_URI, 1 otherwise.

A nameko worker serves no port, but it keeps its AMQP connection open for as long as it consumes;
when the broker drops it (missed heartbeats, broker restart) kombu reconnects. So "connected" is
the readiness of a worker, and "not connected for several minutes" is a worker that needs a restart.

Baked into every service image at /opt/motcua/amqp_probe.py (services/<svc>/Dockerfile) and run
by the kubelet inside the container, i.e. in the pod's network namespace: /proc/net/tcp{,6} list
exactly the pod's sockets. Standard library only, no import of the service, no connection made:
it costs a few milliseconds and cannot disturb the broker. Never prints the URI (it has the
password).

    MOTCUA_AMQP_URI=amqp://user:pass@rabbitmq:5672/ python -I amqp_probe.py
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

DEFAULT_URI = "amqp://guest:guest@127.0.0.1:5672/"  # the settings' default
DEFAULT_PORTS = {"amqp": 5672, "pyamqp": 5672, "librabbitmq": 5672, "amqps": 5671}
ESTABLISHED = "01"  # include/net/tcp_states.h


def broker_ports(uri: str) -> set[int]:
    """Ports of every broker URL in ``uri`` (kombu accepts several separated by ``;``)."""
    ports = set()
    for part in uri.split(";"):
        part = part.strip()
        if not part:
            continue
        url = urlsplit(part)
        try:
            port = url.port
        except ValueError:
            port = None
        scheme = url.scheme.split("+")[-1]
        ports.add(port or DEFAULT_PORTS.get(scheme, 5672))
    return ports


def established_remote_ports(proc_net: str = "/proc/net") -> set[int]:
    """Remote ports of this network namespace's established TCP connections (IPv4 and IPv6)."""
    ports = set()
    for name in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc_net, name), encoding="ascii") as table:
                next(table, None)  # header
                for line in table:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == ESTABLISHED:
                        ports.add(int(fields[2].rsplit(":", 1)[1], 16))
        except FileNotFoundError:  # no IPv6 in this namespace
            continue
    return ports


def main() -> int:
    wanted = broker_ports(os.environ.get("MOTCUA_AMQP_URI") or DEFAULT_URI)
    if wanted & established_remote_ports():
        return 0
    print(f"no established connection to the broker port {sorted(wanted)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
