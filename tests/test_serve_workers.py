"""`kopilka serve --workers 2`: each worker listens on a socket of its own (SO_REUSEPORT,
kopilka/api/listen.py), so tills that connect at once are spread over the workers
instead of all landing on the first one to wake (measured: 16 of 16 on one worker with
uvicorn's shared socket). Linux: the sockets are read from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kopilka.store.migrate import upgrade
from tests.processes import stop
from tests.services.conftest import _free_port

KOPILKA = str(Path(sys.executable).with_name("kopilka"))
WORKERS_2 = ("--workers", "2")

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="SO_REUSEPORT balancing is Linux's"
)


def _sockets_on(port: int) -> dict[int, str]:
    """inode -> TCP state ('0A' listening, '01' established) of the server's side."""
    found: dict[int, str] = {}
    with open("/proc/net/tcp") as f:
        for row in f.readlines()[1:]:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                found[int(fields[9])] = fields[3]
    return found


def _inodes_of(pid: int) -> set[int]:
    out: set[int] = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except OSError:
                continue
    return kids


def _workers(server: subprocess.Popen[bytes], port: int) -> dict[int, dict[str, int]]:
    """Each worker process (a child of the server with a socket on the port) and how
    many listening and established sockets it has there."""
    states = _sockets_on(port)
    out: dict[int, dict[str, int]] = {}
    for pid in _children(server.pid):
        mine = [states[i] for i in _inodes_of(pid) if i in states]
        if mine:
            out[pid] = {"listen": mine.count("0A"), "established": mine.count("01")}
    return out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [KOPILKA, "--db", url, "serve", "--port", str(port), *WORKERS_2, "--log-level", "info"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # both workers started (their log lines), then listening (/health answers)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            if _all_started(tmp_path / "serve.log"):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                        if _get_health(probe).startswith(b"HTTP/1.1 200"):
                            break
                except OSError:
                    pass
            time.sleep(0.1)
        time.sleep(0.5)  # the last worker's socket: listening just after its log line
        yield server, port
    finally:
        stop(server)
        log.close()


def _all_started(log: Path) -> bool:
    return log.read_bytes().count(b"Application startup complete") >= 2


def _get_health(conn: socket.socket) -> bytes:
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_tills_connecting_at_once_are_spread_over_both_workers(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    server, port = served
    before = _workers(server, port)
    assert len(before) == 2  # two processes ...
    assert all(w["listen"] == 1 for w in before.values())
    # ... each on a listening socket of its own (`ss -tlnp` shows two): uvicorn's shared
    # socket, one for both, let the first worker to wake take every waiting connection
    listening = [i for i, st in _sockets_on(port).items() if st == "0A"]
    assert len(listening) == 2
    owners = [{p for p in before if i in _inodes_of(p)} for i in listening]
    assert all(len(o) == 1 for o in owners) and owners[0] != owners[1]

    tills = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
    try:
        answers = [_get_health(c) for c in tills]
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
        # the connections stay open (keep-alive): see which worker holds each
        held = _workers(server, port)
        counts = sorted(w["established"] for w in held.values())
        assert sum(counts) == 16
        # all 16 on one worker has a chance of 2 in 2**16 with the kernel's hash
        assert len(counts) == 2 and counts[0] >= 1, counts
        # and a second request on every connection is answered where it landed
        assert all(_get_health(c).startswith(b"HTTP/1.1 200") for c in tills)
    finally:
        for c in tills:
            c.close()


def test_a_port_in_use_is_refused_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [KOPILKA, "--db", url, "serve", "--port", str(port), *WORKERS_2],
            capture_output=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert b"in use" in done.stdout + done.stderr
