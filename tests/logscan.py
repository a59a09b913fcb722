"""No phone number, one-time code or gift-card PIN in any log line (issue 10).

For the whole test session every log record created by any logger (a record factory
sees them all, whatever the handlers, levels of handlers or ``propagate``) is scanned,
and so are the log files of the server processes the tests start (``watch_file``).  The
one-time codes and PINs the code under test generated or checked are learnt by wrapping
the functions that hash them.  At the end a leak fails the session (exit status 1) and
each offending line is printed, masked.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

PHONE_PATTERNS = [
    re.compile(r"(?:\+|%2B)7\d{10}(?!\d)", re.IGNORECASE),  # +79161234567, in a URL too
    re.compile(r"(?<![\w+])8\d{10}(?![\w])"),  # 89161234567
    re.compile(
        r"\+7[\s(-]{1,2}\d{3}[\s)-]{1,2}\d{3}[\s-]\d{2}[\s-]\d{2}(?!\d)"
    ),  # +7 (916) 123-45-67
]
_lock = threading.Lock()
SECRETS: set[str] = set()  # one-time codes and PINs seen by the code under test
LINES: list[tuple[str, str]] = []  # (where, text) of every record
FILES: list[Path] = []


def remember_secret(value: str) -> None:
    if value and value.isdigit() and len(value) >= 4:
        with _lock:
            SECRETS.add(value)


def watch_file(path: Path) -> None:
    """Scan this file (a server process's log) at the end of the session."""
    FILES.append(path)


def _recording(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(secret: str, *args: Any, **kwargs: Any) -> Any:
        remember_secret(secret)
        return fn(secret, *args, **kwargs)

    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
    return wrapper


def _text(record: logging.LogRecord) -> str:
    try:
        out = record.getMessage()
    except Exception:
        out = str(record.msg)
    if record.exc_info and record.exc_info[1] is not None:
        out += "\n" + logging.Formatter().formatException(record.exc_info)
    return out


def install() -> None:
    from kopilka.services import customers, giftcards, member_auth

    customers.hash_code = _recording(customers.hash_code)  # type: ignore[assignment]
    member_auth.hash_code = customers.hash_code  # type: ignore[attr-defined]
    giftcards.hash_pin = _recording(giftcards.hash_pin)  # type: ignore[assignment]
    giftcards.pin_matches = _recording(giftcards.pin_matches)  # type: ignore[assignment]

    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        line = _text(record)
        # the tests' own HTTP client logging its calls to the in-process app is not the
        # product's log (the app's calls to SMS providers still are scanned)
        if not (record.name.startswith(("httpx", "httpcore")) and "http://test/" in line):
            with _lock:
                LINES.append((f"log {record.name}", line))
        return record

    logging.setLogRecordFactory(factory)


def leaks(lines: list[tuple[str, str]], secrets: set[str]) -> list[tuple[str, str, str]]:
    """(where, what, line) for each line holding a phone number or a known code/PIN: a
    6-digit code anywhere as a whole number; a shorter PIN when the line speaks of a pin
    or a code (a bare 4-digit number is too often a year or an amount)."""
    out: list[tuple[str, str, str]] = []
    long = {s for s in secrets if len(s) >= 6}
    short = secrets - long
    for where, line in lines:
        for pat in PHONE_PATTERNS:
            if pat.search(line):
                out.append((where, "phone", line))
                break
        numbers = set(re.findall(r"(?<![\d\-:./])\d{4,}(?![\d\-:./])", line))
        hit = numbers & long
        if not hit and numbers & short and re.search(r"pin|code|код", line, re.I):
            hit = numbers & short
        if hit:
            out.append((where, "code or PIN", line))
    return out


def mask(line: str) -> str:
    line = re.sub(r"\d(?=\d{2})", "•", line)
    return line[:300]


def pytest_configure(config: pytest.Config) -> None:
    install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    lines = list(LINES)
    for path in FILES:
        if path.exists():
            lines += [
                (f"file {path.name}", x) for x in path.read_text(errors="replace").splitlines()
            ]
    found = leaks(lines, set(SECRETS))
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def say(text: str) -> None:
        if reporter is not None:
            reporter.write_line(text, red=True)
        else:
            print(text)

    say(f"LOG SCAN: {len(found)} log lines hold personal data (issue 10):")
    for where, what, line in found[:20]:
        say(f"  [{where}] {what}: {mask(line)}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
