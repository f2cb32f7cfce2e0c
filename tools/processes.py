"""Running `netsem recv` / `netsem emulate` as real processes (tests and tools), and talking to them.

Every wait is on an event with a deadline (a line on a pipe, a datagram on a socket), never
a fixed sleep, so the tests hold on a loaded machine.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class RssSampler:
    """Peak resident memory of a process while a block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except (OSError, RuntimeError):
                return

    def __enter__(self):
        self.peak = rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Program:
    """A `python -m netsem ...` process whose stdout lines (JSON reports) can be awaited."""

    def __init__(self, *args: str, ready: str = "listening") -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "netsem", *args], cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.stderr_lines: list[str] = []
        self._stdout = _LineReader(self.process.stdout)
        self._stderr = _LineReader(self.process.stderr)
        line = self._stderr.next_line(60)
        while line is not None and ready not in line:
            self.stderr_lines.append(line)
            line = self._stderr.next_line(60)
        if line is None:
            raise AssertionError(f"{args[0]} did not start: {self.process.poll()} {''.join(self.stderr_lines)}"
                                 f"{self._stderr.rest()}")
        self.stderr_lines.append(line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def next_report(self, timeout: float) -> dict | None:
        """The next JSON line on stdout, or None if none came within `timeout` seconds."""
        line = self._stdout.next_line(timeout)
        return None if line is None else json.loads(line)

    def report_where(self, timeout: float, **fields) -> dict:
        """The first JSON report whose fields equal `fields` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            report = self.next_report(left)
            if report is None:
                break
            if all(report.get(key) == value for key, value in fields.items()):
                return report
        raise AssertionError(f"no report with {fields} within {timeout} s; stderr: {self.stderr_text()}")

    def wait_for_stderr(self, text: str, timeout: float) -> str:
        """The first stderr line containing `text`, waiting up to `timeout` seconds for it."""
        for line in self.stderr_lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self._stderr.next_line(left)
            if line is None:
                break
            self.stderr_lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no stderr line with {text!r} within {timeout} s; stderr: {self.stderr_text()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> tuple[int, float, str]:
        """Send `sig`; the exit status, the seconds it took to exit, and its stderr."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        seconds = time.monotonic() - started
        return code, seconds, self.stderr_text()

    def stderr_text(self) -> str:
        return "".join(self.stderr_lines) + self._stderr.rest(wait=self.process.poll() is not None)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class _LineReader:
    """Lines of a pipe, read in a thread so a test can wait for one with a timeout."""

    def __init__(self, pipe) -> None:
        self._lines: list[str] = []
        self._ready = threading.Condition()
        self._closed = False
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe) -> None:
        for line in pipe:
            with self._ready:
                self._lines.append(line)
                self._ready.notify_all()
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def next_line(self, timeout: float) -> str | None:
        with self._ready:
            self._ready.wait_for(lambda: self._lines or self._closed, timeout)
            return self._lines.pop(0) if self._lines else None

    def rest(self, wait: bool = False) -> str:
        with self._ready:
            if wait:
                self._ready.wait_for(lambda: self._closed, 5)
            lines, self._lines = self._lines, []
            return "".join(lines)


def send_all(datagrams: list[bytes], address: tuple[str, int], sock: socket.socket | None = None) -> None:
    """Send the datagrams from `sock` (or a fresh socket: a new sender address)."""
    own = sock is None
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    sock = sock or socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 2**20)
    try:
        for datagram in datagrams:
            try:
                sock.sendto(datagram, address)
            except ConnectionRefusedError:
                pass
    finally:
        if own:
            sock.close()


def wait_readable(sock: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def read_queued(sock: socket.socket) -> list[bytes]:
    """The datagrams `sock` holds now, without waiting (after a sender exited: everything it sent)."""
    got = []
    while True:
        try:
            got.append(sock.recv(65536, socket.MSG_DONTWAIT))
        except (BlockingIOError, InterruptedError):
            return got


def receive_until(sock: socket.socket, done: Callable[[list[bytes]], bool], timeout: float, what: str,
                  got: list[bytes] | None = None) -> list[bytes]:
    """Datagrams read from `sock` (appended to `got`) until `done(got)`; AssertionError naming
    `what` when `timeout` seconds pass without a new datagram. A deadline, never a quiet period."""
    got = [] if got is None else got
    deadline = time.monotonic() + timeout
    while not done(got):
        left = deadline - time.monotonic()
        assert left > 0 and wait_readable(sock, left), \
            f"{what}: nothing more arrived within {timeout} s ({len(got)} datagrams so far)"
        got += read_queued(sock)
        deadline = time.monotonic() + timeout
    return got


def receive_count(sock: socket.socket, count: int, timeout: float, what: str = "datagrams") -> list[bytes]:
    """Datagrams from `sock` until at least `count` have arrived (with whatever was queued
    along with the last); AssertionError after `timeout` seconds without progress."""
    return receive_until(sock, lambda got: len(got) >= count, timeout, f"{what} (waiting for {count})")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 5 ms until it holds; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        threading.Event().wait(0.005)


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """The process is stopped (SIGSTOP) inside the block: what is sent to it meanwhile is all
    queued on its sockets before it reads any of it, however the machine schedules the two."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def local_non_loopback_ipv4() -> str | None:
    """This host's address on its default route, if it has one that is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; the kernel picks the route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address




def receive_queue_bytes(port: int) -> int | None:
    """Bytes queued on the UDP socket bound to `port` (the rx_queue of /proc/net/udp)."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                return int(fields[4].split(":")[1], 16)
    return None


def wait_drained(port: int, timeout: float) -> None:
    """Until the socket on `port` has read everything queued (e.g. after a flood)."""
    deadline = time.monotonic() + timeout
    while receive_queue_bytes(port):
        assert time.monotonic() < deadline, f"port {port} still has a queue after {timeout} s"
        threading.Event().wait(0.01)


def start_emulate(args: list[str], routes: int = 1) -> tuple[subprocess.Popen, list[int]]:
    """`netsem emulate ARGS` as its own process; returns it once it has announced `routes`
    listening ports, and those ports."""
    process = subprocess.Popen([sys.executable, "-m", "netsem", "emulate", *args], cwd=REPO, stderr=subprocess.PIPE,
                               text=True)
    ports = []
    for line in process.stderr:
        match = re.search(r"listening on [^ ]+:(\d+),", line)
        if match:
            ports.append(int(match.group(1)))
            if len(ports) == routes:
                return process, ports
    raise AssertionError(f"emulator did not start: exit {process.wait()}")


def stop_emulate(process: subprocess.Popen) -> str:
    """SIGINT; asserts a clean exit (130, no traceback) and returns the rest of its stderr."""
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=20) == 130 and "Traceback" not in rest, rest
    return rest

