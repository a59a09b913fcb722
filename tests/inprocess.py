"""``kopilka ...`` run in the test's own process: ``cli.main`` in a thread (the command
runs its own event loop, as in a process of its own), its output read from ``capsys``.

For the second and later invocations of a command whose real process (exit code,
stdout, stderr) a test already checks once with ``subprocess``: each process pays the
interpreter's and the libraries' start-up, which proves nothing more about the command.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import pytest

from kopilka import cli


@dataclass(frozen=True)
class Done:
    """What ``subprocess.run(..., capture_output=True, text=True)`` gives, the fields a
    test reads."""

    returncode: int
    stdout: str
    stderr: str


def _main(argv: list[str]) -> int:
    """``cli.main``, ending as the interpreter ends a process on ``SystemExit`` (argparse's
    usage errors: 2; a message: printed to stderr, 1)."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


def kopilka_sync(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> Done:
    """``kopilka --db URL ARGS...`` from a test without a running event loop."""
    capsys.readouterr()  # what the test printed before is not the command's
    code = _main(["--db", url, *args])
    out, err = capsys.readouterr()
    return Done(code, out, err)


async def kopilka_async(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> Done:
    """``kopilka --db URL ARGS...`` from an async test (in a thread: its own loop)."""
    capsys.readouterr()
    code = await asyncio.to_thread(_main, ["--db", url, *args])
    out, err = capsys.readouterr()
    return Done(code, out, err)
