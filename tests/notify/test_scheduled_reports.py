"""A saved report e-mailed on its schedule: one e-mail per run with the file attached,
through the outbox and a real SMTP server (aiosmtpd), however often the worker runs."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import re
from datetime import timedelta
from typing import Any

import openpyxl
import pypdf
from sqlalchemy import func, select, update

from kopilka.notify.channels.email import Smtp
from kopilka.notify.outbox import Notifier, run_once
from kopilka.services import saved_reports
from kopilka.services.audit import Actor
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from tests.analytics.conftest import Till, make_november, utc
from tests.conftest import Clock
from tests.notify.conftest import SmtpServer
from tests.notify.test_delivery import FAST
from tests.notify.test_worker_cli import kopilka

BY_CITY = {
    "dimensions": ["city"],
    "measures": ["sales", "receipts"],
    "period": {"relative": "previous month"},
    "chart": "bar",
}


def smtp(server: SmtpServer) -> Smtp:
    return Smtp(
        "127.0.0.1",
        server.port,
        "reports@shop.example",
        security="none",
        user=server.user,
        password=server.password,
    )


async def saved(till: Till, fmt: str, **when: str) -> tuple[Actor, int, int]:
    analyst = Actor("user", 77, "Analyst", role="analyst", program_id=till.shop.program_id)
    rid = await saved_reports.do_save_report(
        till.rt,
        analyst,
        till.shop.program_id,
        name="Продажи по городам",
        definition=saved_reports.parse_definition(BY_CITY),
        shared_roles=["analyst"],
    )
    values = {
        "frequency": "daily",
        "at": "08:00",
        "recipients": "boss@example.com, cfo@example.com",
    }
    sid = await saved_reports.do_add_schedule(
        till.rt, analyst, rid, {**values, "format": fmt, "locale": "ru", **when}
    )
    return analyst, rid, sid


def attachment(mail: Any) -> tuple[str, str, bytes]:
    msg = email.message_from_bytes(mail.content, policy=email.policy.default)
    [part] = list(msg.iter_attachments())
    return str(msg["Subject"]), part.get_filename(), part.get_content()


async def test_a_due_schedule_sends_one_pdf_however_often_it_runs(
    make_shop: Any, rt: Runtime, clock: Clock, smtp_server: SmtpServer
) -> None:
    till = await make_november(make_shop)
    clock.set(utc(2026, 12, 1, 4, 0))  # 07:00 in Moscow
    analyst, rid, _ = await saved(till, "pdf")
    [sch] = await saved_reports.list_schedules(rt, analyst, rid)
    assert sch.next_run_at == utc(2026, 12, 1, 5, 0)  # 08:00 Moscow time
    notifier = Notifier({"email": smtp(smtp_server)}, FAST)
    assert await saved_reports.run_due(rt) == 0  # not yet

    clock.set(utc(2026, 12, 1, 5, 0, 30))
    first = await saved_reports.run_due(rt)
    again = await saved_reports.run_due(rt)
    await run_once(rt, notifier, worker_id="w", program_ids=[till.shop.program_id])
    await run_once(rt, notifier, worker_id="w", program_ids=[till.shop.program_id])

    assert (first, again) == (1, 0)
    [mail] = smtp_server.mailbox.messages
    assert sorted(mail.rcpt_tos) == ["boss@example.com", "cfo@example.com"]
    subject, filename, data = attachment(mail)
    assert re.fullmatch(r"Отчёт «Продажи по городам» — Program \d+", subject)
    assert filename == "Продажи_по_городам-2026-12-01.pdf"
    text = pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text()
    # "previous month" as of 1 December: November, the fixture's hand-computed totals
    assert "01.11.2026 – 30.11.2026" in text
    assert "Казань 591,00 2" in text and "Москва 200,49 2" in text
    [after] = await saved_reports.list_schedules(rt, analyst, rid)
    assert (after.last_run_at, after.next_run_at) == (
        utc(2026, 12, 1, 5, 0),
        utc(2026, 12, 2, 5, 0),
    )

    clock.advance(days=1)  # the next day's run is a new e-mail
    assert await saved_reports.run_due(rt) == 1
    await run_once(rt, notifier, worker_id="w", program_ids=[till.shop.program_id])
    assert len(smtp_server.mailbox.messages) == 2


async def test_two_workers_racing_for_one_run_queue_it_once(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    till = await make_november(make_shop)
    clock.set(utc(2026, 12, 1, 4, 0))
    _, _, sid = await saved(till, "xlsx")
    clock.set(utc(2026, 12, 1, 6, 0))

    counts = await asyncio.gather(*(saved_reports.run_due(rt) for _ in range(3)))

    assert sum(counts) == 1
    async with rt.engine.connect() as conn:
        n = (
            await conn.execute(
                select(func.count()).where(t.outbox.c.dedup_key.like(f"report:{sid}:%"))
            )
        ).scalar_one()
    assert n == 1


async def test_the_worker_command_mails_the_xlsx_once(
    make_shop: Any, rt: Runtime, smtp_server: SmtpServer
) -> None:
    till = await make_november(make_shop)
    analyst, rid, sid = await saved(till, "xlsx", at="23:59")
    async with rt.engine.begin() as conn:  # due a minute ago, in real time
        await conn.execute(
            update(t.report_schedules)
            .where(t.report_schedules.c.id == sid)
            .values(next_run_at=rt.now() - timedelta(minutes=1))
        )
    env = {
        "KOPILKA_SMTP_HOST": "127.0.0.1",
        "KOPILKA_SMTP_PORT": str(smtp_server.port),
        "KOPILKA_SMTP_SECURITY": "none",
        "KOPILKA_SMTP_FROM": "reports@shop.example",
        "KOPILKA_SMTP_USER": smtp_server.user,
        "KOPILKA_SMTP_PASSWORD": smtp_server.password,
    }
    worker = ["worker", "--once", "--only", "reports,outbox"]
    worker += ["--notify-program", str(till.shop.program_id)]

    one = await asyncio.to_thread(kopilka, rt.url, *worker, **env)
    two = await asyncio.to_thread(kopilka, rt.url, *worker, **env)

    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert "scheduled e-mails queued" in one.stderr  # (other tests' due schedules too)
    async with rt.engine.connect() as conn:
        keys = (
            await conn.execute(
                select(t.outbox.c.dedup_key).where(t.outbox.c.dedup_key.like(f"report:{sid}:%"))
            )
        ).all()
    assert len(keys) == 1
    [mail] = smtp_server.mailbox.messages
    _, filename, data = attachment(mail)
    assert filename.endswith(".xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws is not None
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == ["Город", "Продажи", "Чеки"]
    [sch] = await saved_reports.list_schedules(rt, analyst, rid)
    assert sch.next_run_at > rt.now()


async def test_a_worker_down_for_days_sends_the_latest_run_once(
    make_shop: Any, rt: Runtime, clock: Clock
) -> None:
    till = await make_november(make_shop)
    clock.set(utc(2026, 12, 1, 4, 0))
    analyst, rid, sid = await saved(till, "xlsx")
    clock.set(utc(2026, 12, 4, 6, 0))  # runs were due on 1, 2, 3 and 4 December at 08:00 MSK

    queued = await saved_reports.run_due(rt)

    assert queued == 1
    async with rt.engine.connect() as conn:
        keys = (
            (
                await conn.execute(
                    select(t.outbox.c.dedup_key).where(t.outbox.c.dedup_key.like(f"report:{sid}:%"))
                )
            )
            .scalars()
            .all()
        )
    assert keys == [f"report:{sid}:20261204T0500Z"]
    [sch] = await saved_reports.list_schedules(rt, analyst, rid)
    assert (sch.last_run_at, sch.next_run_at) == (utc(2026, 12, 4, 5), utc(2026, 12, 5, 5))
