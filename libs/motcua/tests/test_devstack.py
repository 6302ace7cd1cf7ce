"""The process supervisor, with tiny Python children."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from motcua_dev.devstack import ProcessSpec, Stack, StackError, pid_alive


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


READY_SOON = py("""
    import time
    print("booting")
    time.sleep(0.3)
    print("READY")
    time.sleep(60)
""")
SLEEPER = py("import time; time.sleep(60)")


def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """The pids still alive after ``timeout`` (an orphan is reaped by PID 1 a moment later)."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if pid_alive(p)]


def test_waits_for_each_ready_line(tmp_path: Path) -> None:
    specs = [
        ProcessSpec("api", READY_SOON, ready_pattern="READY"),
        ProcessSpec("worker", py("""
            import time
            time.sleep(0.6)
            print("worker listening, READY", flush=True)
            time.sleep(60)
        """), ready_pattern=r"listening.*READY"),
        ProcessSpec("plain", SLEEPER),  # no pattern: running is enough
    ]
    with Stack(specs, tmp_path) as stack:
        started = time.monotonic()
        stack.wait_ready(timeout=10)
        assert time.monotonic() - started >= 0.5  # waited for the slower worker
        assert all(stack.alive(name) for name in ("api", "worker", "plain"))
        assert "booting\nREADY" in (tmp_path / "api.log").read_text()


def test_not_ready_in_time(tmp_path: Path) -> None:
    with Stack([ProcessSpec("mute", SLEEPER, ready_pattern="READY")], tmp_path) as stack, \
            pytest.raises(StackError, match="not ready after 0.5s: mute"):
        stack.wait_ready(timeout=0.5)


def test_exit_before_ready_is_reported_with_its_log(tmp_path: Path) -> None:
    crash = py("import sys; print('cannot bind port'); sys.exit(3)")
    with Stack([ProcessSpec("svc", crash, ready_pattern="READY")], tmp_path) as stack, \
            pytest.raises(StackError, match=r"(?s)svc exited with code 3.*cannot bind port"):
        stack.wait_ready(timeout=10)


def test_kill_9_and_restart(tmp_path: Path) -> None:
    with Stack([ProcessSpec("svc", READY_SOON, ready_pattern="READY")], tmp_path) as stack:
        stack.wait_ready(timeout=10)
        first = stack.pid("svc")
        stack.kill("svc")
        assert not stack.alive("svc")
        assert not pid_alive(first)

        stack.restart("svc")
        stack.wait_ready(timeout=10)  # must wait for the new READY, not match the old one
        assert stack.alive("svc")
        assert stack.pid("svc") != first
        assert (tmp_path / "svc.log").read_text().count("READY") == 2


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = py("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("READY")
        time.sleep(60)
    """)
    stack = Stack([ProcessSpec("stubborn", stubborn, ready_pattern="READY")], tmp_path).start()
    stack.wait_ready(timeout=10)
    pid = stack.pid("stubborn")
    started = time.monotonic()
    stack.stop(timeout=1)
    elapsed = time.monotonic() - started
    assert 1 <= elapsed < 5
    assert not stack.alive("stubborn")
    assert wait_gone([pid]) == []


def test_no_child_or_grandchild_survives_stop(tmp_path: Path) -> None:
    parent = py(f"""
        import subprocess, time
        grandchild = subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(60)"])
        print("GRANDCHILD", grandchild.pid)
        print("READY")
        time.sleep(60)
    """)
    specs = [ProcessSpec("parent", parent, ready_pattern="READY"), ProcessSpec("plain", SLEEPER)]
    with Stack(specs, tmp_path) as stack:
        stack.wait_ready(timeout=10)
        pids = [stack.pid("parent"), stack.pid("plain")]
        grandchild = int((tmp_path / "parent.log").read_text().split("GRANDCHILD ")[1].split()[0])
        assert pid_alive(grandchild)
    assert wait_gone([*pids, grandchild]) == []


def test_echo_prefixes_lines_and_still_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Stack([ProcessSpec("intake", READY_SOON, ready_pattern="READY")], tmp_path, echo=True) as stack:
        stack.wait_ready(timeout=10)
    out = capsys.readouterr().out
    assert "[intake] booting\n[intake] READY\n" in out
    assert (tmp_path / "intake.log").read_text() == "booting\nREADY\n"


def test_run_forever_reports_a_death_and_stops_on_sigterm(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from motcua_dev.devstack import ProcessSpec, Stack
        stack = Stack([
            ProcessSpec("steady", {READY_SOON!r}, ready_pattern="READY"),
            ProcessSpec("crashy", [sys.executable, "-c", "import sys; sys.exit(3)"]),
        ], sys.argv[1]).start()
        stack.wait_ready(timeout=10)
        print("PID", stack.pid("steady"), flush=True)
        sys.exit(stack.run_forever(poll=0.1))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    steady = int(proc.stdout.readline().split()[1])
    time.sleep(0.5)  # let the supervisor notice the crash
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1, err
    assert "crashy exited with code 3" in err
    assert wait_gone([steady]) == []


# -- make run's clock, moved by make demo ------------------------------------------------------------

SAYS_ITS_CLOCK = py("""
    import os, time
    print("clock", os.environ.get("MOTCUA_CLOCK_OFFSET_S", "-"), os.environ.get("MOTCUA_SLA_SWEEP_INTERVAL_S", "-"))
    print("READY", flush=True)
    time.sleep(60)
""")


def test_make_run_restarts_the_processes_that_read_the_clock_with_the_offset_the_demo_asks(tmp_path: Path) -> None:
    from motcua_dev.platform import ClockControl

    specs = [ProcessSpec(name, SAYS_ITS_CLOCK, env={"MOTCUA_SLA_SWEEP_INTERVAL_S": "30"}, ready_pattern="READY")
             for name in ("routing-worker", "intake-api", "signing-api")]
    clock = ClockControl.of(tmp_path / "var")
    with Stack(specs, tmp_path / "logs") as stack:
        stack.wait_ready(timeout=10)
        signing_pid = stack.pid("signing-api")
        clock.poll(stack, say=lambda _: None)  # nothing asked: nothing restarted
        assert clock.applied() is None

        clock.request(86400)
        clock.poll(stack, say=lambda _: None)
        assert clock.applied() == 86400
        for name in ("routing-worker", "intake-api"):
            assert stack.tail(name, 2).startswith("clock 86400.000 1\n"), stack.tail(name)
        assert stack.pid("signing-api") == signing_pid  # signing keeps the real time
        restarted = stack.pid("routing-worker")
        clock.poll(stack, say=lambda _: None)  # applied already
        assert stack.pid("routing-worker") == restarted

        clock.request(0)  # back as make run started them
        clock.poll(stack, say=lambda _: None)
        assert clock.applied() == 0
        assert stack.tail("routing-worker", 2).startswith("clock - 30\n"), stack.tail("routing-worker")
