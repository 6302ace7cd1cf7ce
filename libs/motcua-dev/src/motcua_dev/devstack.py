"""A small process supervisor for ``make run`` and the e2e / crash tests.

Each child runs in its own process group, so a signal to the group also reaches whatever the
child started, and Ctrl-C in the terminal reaches only the supervisor, which then stops the
children in order instead of racing them. Output goes to ``<log_dir>/<name>.log``; readiness is a
regular expression searched in the lines a child wrote since its latest start.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


def eventually(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds, asked every ``interval``
    (and once more at the end): how tests and the dev tools wait for an effect to land."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class StackError(RuntimeError):
    """A child could not start, died before it was ready, or was not ready in time."""


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)  # added to the supervisor's environment
    ready_pattern: str | None = None  # regex searched in each output line, e.g. "READY"
    cwd: str | Path | None = None


@dataclass
class _Child:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes]
    log_offset: int  # where this start's output begins in the (appended) log
    echo_thread: threading.Thread | None = None
    reported: bool = False
    finished: bool = False  # its group was SIGKILLed and it was reaped: never signal that pgid again


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie counts as dead: PID 1 in a container may never reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Stack:
    def __init__(self, specs: Iterable[ProcessSpec], log_dir: str | Path, echo: bool = False):
        self.specs = {spec.name: spec for spec in specs}
        self.log_dir = Path(log_dir)
        self.echo = echo
        self._children: dict[str, _Child] = {}
        self._print_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Stack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.specs:
            self._spawn(name)
        return self

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, name: str) -> None:
        spec = self.specs[name]
        log_path = self.log_path(name)
        # Unbuffered output so a Python child's ready line reaches the log when it is printed.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        with open(log_path, "ab") as log:  # appended: a restart keeps the previous run's output
            offset = log.tell()
            out: Any = subprocess.PIPE if self.echo else log  # without echo the child writes the file
            proc = subprocess.Popen(
                list(spec.argv), env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        child = _Child(spec, proc, offset)
        if self.echo:
            child.echo_thread = threading.Thread(
                target=self._pump, args=(name, proc.stdout, log_path), daemon=True, name=f"echo-{name}"
            )
            child.echo_thread.start()
        self._children[name] = child

    def _pump(self, name: str, pipe: IO[bytes], log_path: Path) -> None:
        with open(log_path, "ab") as log, pipe:
            for line in pipe:
                log.write(line)
                log.flush()
                with self._print_lock:
                    text = line.decode(errors="replace").rstrip("\n")
                    print(f"[{name}] {text}", file=sys.stdout, flush=True)

    def wait_ready(self, timeout: float = 60.0, names: Iterable[str] | None = None) -> None:
        """Wait until every child (or those named) printed its ready line since its latest start."""
        deadline = time.monotonic() + timeout
        pending = [n for n in (names or self._children) if self.specs[n].ready_pattern]
        while pending:
            for name in list(pending):
                if self._ready(name):
                    pending.remove(name)
                elif not self.alive(name):
                    code = self._children[name].proc.returncode
                    raise StackError(f"{name} exited with code {code} before it was ready\n{self.tail(name)}")
            if pending and time.monotonic() > deadline:
                raise StackError(f"not ready after {timeout}s: {', '.join(pending)}")
            time.sleep(0.05)

    def _ready(self, name: str) -> bool:
        child = self._children[name]
        pattern = re.compile(child.spec.ready_pattern or "")
        with open(self.log_path(name), "rb") as log:
            log.seek(child.log_offset)
            return any(pattern.search(line.decode(errors="replace")) for line in log)

    def tail(self, name: str, lines: int = 20) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def pid(self, name: str) -> int:
        return self._children[name].proc.pid

    def alive(self, name: str) -> bool:
        return self._children[name].proc.poll() is None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the child's whole group; after SIGKILL, return once the child is gone."""
        child = self._children[name]
        _signal_group(child.proc.pid, sig)
        if sig == signal.SIGKILL:
            self._finish(child)

    def restart(self, name: str, timeout: float = 10.0) -> None:
        """Stop the child if it runs, then start it again (call ``wait_ready`` for it next)."""
        self._stop_children([self._children[name]], timeout)
        self._spawn(name)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every group, wait up to ``timeout``, then SIGKILL whatever remains."""
        self._stop_children(list(self._children.values()), timeout)

    def _stop_children(self, children: list[_Child], timeout: float) -> None:
        children = [child for child in children if not child.finished]
        for child in children:
            _signal_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(max(0.0, deadline - time.monotonic()))
        for child in children:
            self._finish(child)

    def _finish(self, child: _Child) -> None:
        # SIGKILL the group also when the leader is gone: grandchildren may still be in it.
        _signal_group(child.proc.pid, signal.SIGKILL)
        child.proc.wait()
        child.finished = True
        if child.echo_thread is not None:
            child.echo_thread.join(timeout=5)

    # -- make run ----------------------------------------------------------------------------

    def run_forever(self, poll: float = 0.5, tick: Callable[[], None] | None = None) -> int:
        """Supervise until Ctrl-C or SIGTERM, then stop everything. Returns 1 if a child died.
        ``tick`` runs every ``poll`` seconds on this thread (it may restart children)."""
        stopping = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        died = False
        try:
            while not stopping.wait(poll):
                if tick is not None:
                    try:
                        tick()
                    except Exception as error:  # noqa: BLE001 - reported; the stack stays up
                        self._say(f"{error}")
                for name, child in self._children.items():
                    if child.proc.poll() is not None and not child.reported:
                        # Report, keep the others running: the rest of the stack stays usable.
                        child.reported = died = True
                        self._say(
                            f"{name} exited with code {child.proc.returncode}; "
                            f"log {self.log_path(name)}:\n{self.tail(name)}"
                        )
        finally:
            self._say("stopping")
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if died else 0

    def _say(self, message: str) -> None:
        with self._print_lock:
            print(f"[stack] {message}", file=sys.stderr, flush=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is already empty
        os.killpg(pgid, sig)
