"""Crash points: SIGKILL this process at named places, for the crash drills (issue 10).

Off unless the environment variable ``KOPILKA_CRASH_POINTS`` is set when the process
starts.  It lists sites with the probability of dying each time one is reached::

    KOPILKA_CRASH_POINTS="tx.statement=0.03,http.answer=0.1"   # or "*=0.02" for every site

The list is read once, at import, into the module constants ``POINTS`` and ``ARMED``;
every call site is guarded by ``if ARMED:`` (imported as a constant), so a normal server
pays one global lookup per transaction and nothing else.  ADR 0031.

Sites (``SITES``):

- ``tx.begin``      hot path: a connection taken, before BEGIN
- ``tx.statement``  hot path: before each statement (= after the previous one)
- ``tx.commit``     hot path: every statement done, before COMMIT
- ``tx.committed``  hot path: after COMMIT, before the answer is built
- ``sa.begin``, ``sa.statement``, ``sa.commit``  the same on SQLAlchemy's engine
  (refunds, jobs, key lookups); ``sa.commit`` fires before COMMIT is sent
- ``http.answer``   the answer is ready and about to be sent (after any commit)
- ``delivery.sent`` the worker sent a batch of notifications and has not marked them

Dying is ``os.kill(getpid(), SIGKILL)``: no ``finally``, no atexit, no flush, as when the
kernel's OOM killer or a power cut takes the process.  Before dying the site's name is
appended to ``KOPILKA_CRASH_LOG`` (one line, ``O_APPEND``), so a drill can count kills per
site.  ``KOPILKA_CRASH_SEED`` makes the choices repeatable (each forked child reseeds
with its pid mixed in, so that restarted children do not die at the same place forever).
"""

from __future__ import annotations

import os
import random
import signal
from typing import Final

ENV = "KOPILKA_CRASH_POINTS"
SITES: Final = (
    "tx.begin",
    "tx.statement",
    "tx.commit",
    "tx.committed",
    "sa.begin",
    "sa.statement",
    "sa.commit",
    "http.answer",
    "delivery.sent",
)


def parse(raw: str) -> dict[str, float]:
    """``"site=p,site=p"`` to {site: p}; ``*`` stands for every site.  Raises
    ``ValueError`` on an unknown site or a probability outside [0, 1]."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        site, _, prob = part.partition("=")
        site = site.strip()
        p = float(prob) if prob.strip() else 1.0
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{ENV}: probability of {site!r} must be within 0..1, got {p}")
        if site == "*":
            out.update({s: p for s in SITES if s not in out})
        elif site in SITES:
            out[site] = p
        else:
            raise ValueError(f"{ENV}: unknown crash site {site!r}; known: {', '.join(SITES)}")
    return {s: p for s, p in out.items() if p > 0}


POINTS: Final = parse(os.environ.get(ENV, ""))
ARMED: Final = bool(POINTS)
_seed = os.environ.get("KOPILKA_CRASH_SEED")
_rng = random.Random(_seed)


def _reseed() -> None:
    _rng.seed(f"{_seed}:{os.getpid()}" if _seed is not None else None)


if ARMED:
    os.register_at_fork(after_in_child=_reseed)


def point(site: str) -> None:
    """Maybe die here (with the probability configured for ``site``)."""
    p = POINTS.get(site)
    if p is None or _rng.random() >= p:
        return
    log = os.environ.get("KOPILKA_CRASH_LOG")
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{site}\n".encode())
        os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def on_statement(sql: str) -> None:
    """A hot-path statement listener (``store.raw.statement_listeners``); BEGIN and
    COMMIT have sites of their own (``tx.begin``, ``tx.commit``)."""
    if sql not in ("BEGIN", "COMMIT"):
        point("tx.statement")


def arm_engine(sync_engine: object) -> None:
    """Crash points on a SQLAlchemy engine's begin, statements and commit."""
    from typing import Any

    from sqlalchemy import event

    def begin(_conn: Any) -> None:
        point("sa.begin")

    def statement(*_a: Any) -> None:
        point("sa.statement")

    def commit(_conn: Any) -> None:
        point("sa.commit")

    event.listen(sync_engine, "begin", begin)
    event.listen(sync_engine, "before_cursor_execute", statement)
    event.listen(sync_engine, "commit", commit)
