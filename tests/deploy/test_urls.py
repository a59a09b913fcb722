"""The database URL with several hosts, as the operator writes it, reaches asyncpg's own
pool (the hot path) with every host — asyncpg keeps only the last of repeated ``host``
parameters, which would silently pin the hot path to one server."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from kopilka.store.db import asyncpg_dsn


def test_several_hosts_become_one_comma_separated_host_parameter() -> None:
    url = (
        "postgresql://kop:s%40cret@/loyalty?host=db1:5432&host=db2:6432"
        "&target_session_attrs=read-write"
    )

    dsn = urlsplit(asyncpg_dsn(url))

    assert dsn.scheme == "postgresql"
    assert dsn.path == "/loyalty"
    assert parse_qs(dsn.query) == {
        "host": ["db1:5432,db2:6432"],
        "target_session_attrs": ["read-write"],
    }
    assert dsn.username == "kop" and dsn.password == "s%40cret"


def test_one_host_is_left_as_it_was() -> None:
    url = "postgresql+asyncpg://kop@10.0.0.5:5432/loyalty"

    assert asyncpg_dsn(url) == "postgresql://kop@10.0.0.5:5432/loyalty"
