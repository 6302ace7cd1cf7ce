"""A worker's /readyz and /livez (motcua.metrics) follow its consumers, not its TCP connection: a
real worker process (poison_worker.py, motcua.worker.main) whose consumer the broker refuses stays
up and connected, and its probes say so; once the broker takes its consumer again, they recover."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from motcua_dev import infra

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("poison_worker.py")


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def test_the_probes_fail_while_the_consumer_is_gone_and_recover_with_it(vhost_uri, tmp_path):
    vhost = unquote(urlsplit(vhost_uri).path.lstrip("/"))
    user = urlsplit(vhost_uri).username or "guest"
    port = infra.free_port()
    env = {**os.environ, "MOTCUA_AMQP_URI": vhost_uri, "MOTCUA_AREAS": "bim-son",
           "MOTCUA_DATA_DIR": str(tmp_path / "data"), "POISON_SEEN_FILE": str(tmp_path / "seen.jsonl"),
           "MOTCUA_METRICS_PORT": str(port), "MOTCUA_CONSUMER_LOST_S": "1"}
    stderr = open(tmp_path / "worker.stderr", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, str(WORKER)], env=env, stdout=subprocess.PIPE, stderr=stderr)
    ready = threading.Event()
    threading.Thread(target=lambda: [ready.set() for line in process.stdout if line.startswith(b"READY")],
                     daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    try:
        assert ready.wait(60), (tmp_path / "worker.stderr").read_text()[-3000:]
        assert status(base + "/readyz") == 200 and status(base + "/livez") == 200
        # The broker refuses the consumer from now on (no read permission in the vhost), and the
        # worker's connection is closed: it reconnects, but cannot consume.
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", "^$")
        for line in rabbitmqctl("list_connections", "vhost", "pid").splitlines():
            fields = line.split("\t")
            if len(fields) == 2 and fields[0] == vhost:
                rabbitmqctl("close_connection", fields[1], "test: consumer refused")
        assert wait_for(lambda: status(base + "/readyz") == 503)
        assert wait_for(lambda: status(base + "/livez") == 503), "liveness must fail once the grace is over"
        assert process.poll() is None, "the process itself is still running: only the probe tells"
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        assert wait_for(lambda: status(base + "/readyz") == 200 and status(base + "/livez") == 200)
    finally:
        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        stderr.close()
