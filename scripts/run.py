"""`make run`: the whole platform on one machine, until Ctrl-C.

Makes sure RabbitMQ and an S3 service answer (starting SeaweedFS from var/seaweedfs when nothing
listens on the S3 endpoint), declares the messaging topology for every area of the catalog,
then starts each service's api and worker processes under one supervisor and prints where the
gRPC APIs listen and where each process serves its Prometheus metrics (a free port each).
Ctrl-C stops the processes and the SeaweedFS it started.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kombu import Connection
from motcua_dev import infra
from motcua_dev.devstack import Stack
from motcua_dev.platform import (
    API_PORTS,
    MAILBOX_PORTS,
    PKI_PORT,
    ClockControl,
    mailbox_spec,
    metrics_urls,
    platform_specs,
)
from motcua_dev.signing_env import signing_environment

from motcua.messaging import topology
from motcua.settings import PlatformSettings

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    os.chdir(ROOT)
    settings = PlatformSettings.load()
    infra.ensure_rabbitmq(settings.amqp_uri)
    weed = infra.ensure_seaweedfs(settings)  # None when an S3 service already answered
    try:
        topology.use_queue_type(settings.queue_type)
        with Connection(settings.amqp_uri) as connection:
            queues = topology.declare(connection, topology.SERVICES, settings.served_areas(),
                                      settings.retry_delays_ms)
        print(f"[run] declared {len(queues)} queues for areas {', '.join(settings.served_areas())}")
        env = {key: value for key, value in os.environ.items() if key.startswith("MOTCUA_")}
        # one machine, for development: webhooks may go to http://127.0.0.1 (the demo's subscriber)
        env = {"MOTCUA_NOTIFY_WEBHOOK_ALLOW_HTTP": "true", "MOTCUA_NOTIFY_WEBHOOK_ALLOW_PRIVATE": "true", **env}
        # the development PKI served from this process on PKI_PORT; the signing keys in the SoftHSM2
        # token under var/softhsm (every catalog unit's seal and the dev roster's officials enrolled)
        signing = signing_environment(ROOT / "var" / "pki", ROOT / "var" / "softhsm", port=PKI_PORT, env=env)
        env.update(signing.__enter__())
        print(f"[run] development PKI on http://127.0.0.1:{PKI_PORT} (CRL, OCSP, TSA); signing keys in the "
              f"SoftHSM2 token {env['MOTCUA_PKCS11_TOKEN']!r} (python -m signing list)")
        specs = platform_specs(env)
        # notify's providers, unless something already listens there (another `make run`, a real relay)
        mailbox = not any(infra.port_open("127.0.0.1", port) for port in MAILBOX_PORTS.values())
        if mailbox:
            specs.insert(0, mailbox_spec(str(ROOT / "var")))
        stack = Stack(specs, ROOT / "var" / "log")
        clock = ClockControl.of(ROOT / "var")  # `make demo` moves the clock to see a step run late (form 04)
        for stale in (clock.path, clock.applied_path):  # a new platform starts at the real time
            stale.unlink(missing_ok=True)
        with stack:
            stack.wait_ready(timeout=120)
            for service, port in API_PORTS.items():
                print(f"[run] {service} gRPC API listening on {settings.grpc_host}:{port} "
                      f"(health, reflection={'on' if settings.grpc_reflection else 'off'})")
            for name, url in metrics_urls(stack).items():
                print(f"[run] {name} metrics at {url} (worker health: /readyz, /livez)")
            if mailbox:
                print(f"[run] notify delivers to the local SMTP server 127.0.0.1:{MAILBOX_PORTS['smtp']} "
                      f"(var/mail/*.eml) and SMS gateway stand-in 127.0.0.1:{MAILBOX_PORTS['sms']} (var/sms/sms.jsonl)")
            print(f"[run] workers consume the queues of {', '.join(settings.served_areas())}; "
                  f"logs in var/log/; try `make demo` in another terminal; Ctrl-C stops everything")
            return stack.run_forever(tick=lambda: clock.poll(stack))
    finally:
        if "signing" in locals():
            signing.__exit__(None, None, None)
        if weed is not None:
            weed.stop()
            print("[run] stopped SeaweedFS")


if __name__ == "__main__":
    sys.exit(main())
