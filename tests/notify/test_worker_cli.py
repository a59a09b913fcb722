"""``kopilka worker`` delivers the outbox with channels from the environment, and
``kopilka outbox`` shows dead letters and queues them again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select, update

from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.conftest import receipt
from tests.inprocess import kopilka_async
from tests.notify.conftest import HttpReceiver


def kopilka(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kopilka.cli", "--db", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


async def test_the_worker_sends_the_receipt_sms_and_the_cli_requeues_dead_letters(
    make_shop: Any, rt: Runtime, http_receiver: HttpReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = await make_shop(earn_percent="10")
    member = await shop.customer()
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(t.customers)
            .where(t.customers.c.id == member.customer_id)
            .values(consent_sms=True)
        )
    r = await shop.post("/purchases", receipt("r1", member.card, ("a", 1, "500.00")))
    assert r.status_code == 200, r.text
    env = {
        "KOPILKA_SMS_PROVIDER": "json",
        "KOPILKA_SMS_URL": http_receiver.url,
        "KOPILKA_NOTIFY_MAX_ATTEMPTS": "1",
    }
    worker = ["worker", "--once", "--only", "outbox", "--notify-program", str(shop.program_id)]
    http_receiver.status = 503

    failed = await asyncio.to_thread(kopilka, rt.url, *worker, **env)
    # `outbox retry` below runs in a process of its own; `outbox dead` in this one
    dead = await kopilka_async(capsys, rt.url, "outbox", "dead", "--program", str(shop.program_id))
    requeue = await asyncio.to_thread(
        kopilka, rt.url, "outbox", "retry", "--program", str(shop.program_id)
    )
    http_receiver.status = 200
    sent = await asyncio.to_thread(kopilka, rt.url, *worker, **env)

    assert failed.returncode == 0, failed.stderr
    assert "0 delivered" in failed.stderr and "1 dead" in failed.stderr
    [line] = dead.stdout.splitlines()
    cols = line.split("\t")
    assert cols[3:7] == [
        "purchase.confirmed",
        "sms",
        member.phone[:-7] + "***-**-" + member.phone[-2:],
        "dead",
    ]
    assert "queued 1 deliveries again" in requeue.stderr
    assert sent.returncode == 0 and "1 delivered" in sent.stderr, sent.stderr
    assert [s.json()["text"] for s in http_receiver.seen][-1].startswith("Начислено 50 баллов")
    async with rt.engine.connect() as conn:
        actions = (
            (
                await conn.execute(
                    select(t.audit_log.c.action).where(t.audit_log.c.program_id == shop.program_id)
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["outbox.retry"]


def test_worker_only_runs_the_named_jobs_and_refuses_an_unknown_one(tmp_path: Any) -> None:
    from argparse import Namespace

    from kopilka.jobs import worker

    args = Namespace(
        fraud_pins_every_s=60.0,
        expiry_every_s=3600.0,
        levels_every_s=3600.0,
        rfm_every_s=86400.0,
        summary_every_s=60.0,
        basket_every_s=86400.0,
        notify_program=None,
        verify_hour=3,
        verify_tz=None,
        alert_email=[],
        only=["rfm", "summary-tables,holds"],
    )
    jobs = worker.table(args, notifier=None, expiring_days=None, worker_id="t")
    assert [j.name for j in jobs] == ["holds", "rfm", "summary tables"]  # the table's order

    url = f"sqlite:///{tmp_path / 'w.db'}"
    bad = kopilka(url, "worker", "--once", "--no-notify", "--only", "rfm,delivery")
    assert bad.returncode == 2
    assert "unknown job(s) delivery" in bad.stderr and "outbox" in bad.stderr


def test_worker_only_names_every_job_of_the_table() -> None:
    from argparse import Namespace

    from kopilka.jobs import worker

    args = Namespace(
        fraud_pins_every_s=60.0,
        expiry_every_s=3600.0,
        levels_every_s=3600.0,
        rfm_every_s=86400.0,
        summary_every_s=60.0,
        basket_every_s=86400.0,
        notify_program=None,
        verify_hour=3,
        verify_tz=None,
        alert_email=[],
        only=None,
    )
    jobs = worker.table(args, notifier=object(), expiring_days=None, worker_id="t")
    assert [worker.job_key(j.name) for j in jobs] == list(worker.JOB_KEYS)
