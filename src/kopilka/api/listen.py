"""Several server processes, each accepting on a listening socket of its own.

uvicorn's ``--workers`` binds one socket in the parent and lets every worker accept on it.
A worker woken by a new connection accepts every connection waiting, so when tills
connect at once (a restart, a morning, a benchmark) one worker gets nearly all of them
and keeps them for as long as they stay open: measured with 16 tills, one process held
all 16 keep-alive connections and ran at 95 % of a core while the other idled.

With ``SO_REUSEPORT`` (Linux) every worker listens on a socket of its own bound to the
same address, and the kernel spreads new connections across those sockets by a hash of
the client's address and port. uvicorn's supervisor (``Multiprocess``: signals, health
pings, restarts) is kept; it pickles its sockets into every worker it starts, so we hand
it a :class:`ReusePortListener`, which unpickles in the worker as a fresh socket bound
there.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any, cast

logger = logging.getLogger("uvicorn.error")


def reuseport_supported() -> bool:
    """Linux balances connections across ``SO_REUSEPORT`` listeners; other systems do not
    (BSD and macOS hand them all to one socket), so there the shared socket stays."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_reuseport(host: str, port: int, family: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (not yet listening)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ReusePortListener:
    """An address that becomes a new ``SO_REUSEPORT`` socket in the process that unpickles
    it: the worker uvicorn's supervisor starts (or restarts)."""

    def __init__(self, host: str, port: int, family: int) -> None:
        self.host = host
        self.port = port
        self.family = family

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return (bind_reuseport, (self.host, self.port, self.family))


def serve_workers(config: Any) -> None:
    """Run ``config.workers`` uvicorn workers, each listening on its own socket.

    The parent binds the address first (not listening: the kernel gives connections only
    to listening sockets), so a port in use fails here at once, and port 0 becomes the
    port every worker binds."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    host = config.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        holder = bind_reuseport(host, config.port, family)
    except OSError as exc:
        logger.error(exc)
        sys.exit(1)
    port = holder.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    logger.info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit); "
        "%d workers, each on its own socket (SO_REUSEPORT)",
        shown,
        port,
        config.workers,
    )
    listener = ReusePortListener(host, port, family)
    try:
        Multiprocess(config, sockets=cast(list[socket.socket], [listener])).run()
    finally:
        holder.close()
