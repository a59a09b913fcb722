"""Admin API: the clearing report, statements, terms and closing; a partner's token sees
only its own settlement; bad input is problem+json naming the field."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime

import httpx
import pytest

from kopilka.services import admin
from kopilka.services.errors import ServiceError
from tests.conftest import Clock
from tests.settlement.conftest import Coalition

BASE = "/api/admin/v1/settlement"


async def _auth(c: Coalition, role: str = "owner", partner: str | None = None) -> dict[str, str]:
    key = await admin.do_add_token(
        c.a.rt,
        name=f"t-{secrets.token_hex(2)}",
        program_code=c.a.code,
        role=role,
        partner_code=partner,
    )
    return {"Authorization": f"Bearer {key}"}


async def test_the_owner_sets_terms_closes_and_reads_the_month(
    coalition: Coalition, client: httpx.AsyncClient, clock: Clock
) -> None:
    c = coalition
    owner = await _auth(c)
    url = f"{BASE}/{c.a.code}"

    terms = await client.put(f"{url}/terms", json={"rate": "0.50", "fee_percent": 2}, headers=owner)
    early = await client.post(f"{url}/periods/2026-11/close", headers=owner)
    clock.set(datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    closed = await client.post(f"{url}/periods/2026-11/close", headers=owner)
    js = await client.get(f"{url}/report", params={"period": "2026-11"}, headers=owner)
    table = await client.get(
        f"{url}/report", params={"period": "2026-11", "format": "csv"}, headers=owner
    )
    statement = await client.get(f"{url}/statements/2026-11/coffee.pdf", headers=owner)

    assert terms.json() == {"rate": "0.50", "fee_percent": "2"}
    assert early.status_code == 409 and early.json()["code"] == "period_not_finished"
    assert closed.status_code == 201, closed.text
    body = js.json()
    assert body["state"] == "closed" and body["figures_sha256"] == closed.json()["figures_sha256"]
    nets = {p["party"]: p["roubles"]["net"] for p in body["positions"]}
    assert nets == {"operator": "-23.40", "apteka": "-15.40", "coffee": "38.80"}
    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert [r["party"] for r in rows] == ["operator", "apteka", "coffee"]
    assert statement.status_code == 200
    assert statement.headers["content-type"] == "application/pdf"
    assert b"/ByteRange" in statement.content and b"ETSI.CAdES.detached" in statement.content


async def test_a_partner_token_sees_only_its_own_settlement(
    coalition: Coalition, client: httpx.AsyncClient
) -> None:
    c = coalition
    apteka = await _auth(c, role="partner", partner="apteka")
    with pytest.raises(ServiceError) as unscoped:  # a partner token names its partner
        await _auth(c, role="partner")
    url = f"{BASE}/{c.a.code}"

    mine = await client.get(f"{url}/report", params={"period": "2026-11"}, headers=apteka)
    theirs = await client.get(
        f"{url}/report", params={"period": "2026-11", "partner": "coffee"}, headers=apteka
    )
    own_pdf = await client.get(f"{url}/statements/2026-11/apteka.pdf", headers=apteka)
    other_pdf = await client.get(f"{url}/statements/2026-11/coffee.pdf", headers=apteka)
    operator_pdf = await client.get(f"{url}/statements/2026-11/operator.pdf", headers=apteka)
    close = await client.post(f"{url}/periods/2026-11/close", headers=apteka)

    body = mine.json()
    assert [p["party"] for p in body["positions"]] == ["apteka"]
    assert [(o["issuer"], o["acceptor"]) for o in body["obligations"]] == [
        ("apteka", "coffee"),
        ("coffee", "apteka"),
    ]
    assert body["between"] == [
        {"a": "apteka", "b": "coffee", "points": "30.00", "roubles": "30.00"}
    ]
    # another party's: as a partner that does not exist (ADR 0026)
    assert theirs.status_code == 404 and theirs.json()["field"] == "partner"
    assert own_pdf.status_code == 200
    assert (other_pdf.status_code, operator_pdf.status_code) == (404, 404)
    assert unscoped.value.field == "partner"
    assert close.status_code == 403


async def test_bad_input_is_named(coalition: Coalition, client: httpx.AsyncClient) -> None:
    c = coalition
    owner = await _auth(c)
    url = f"{BASE}/{c.a.code}"

    month = await client.get(f"{url}/report", params={"period": "2026-13"}, headers=owner)
    days = await client.get(f"{url}/report", params={"from": "2026-11-30", "to": "2026-11-01"},
                            headers=owner)  # fmt: skip
    rate = await client.put(f"{url}/terms", json={"rate": "abc"}, headers=owner)
    fee = await client.put(f"{url}/terms", json={"fee_percent": "150"}, headers=owner)
    inn = await client.put(f"{url}/partners/coffee", json={"inn": "77-01"}, headers=owner)
    who = await client.get(f"{url}/statements/2026-11/nobody.pdf", headers=owner)

    for r, field in ((month, "period"), (days, "to"), (rate, "rate"), (fee, "fee_percent"),
                     (inn, "inn")):  # fmt: skip
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["field"] == field
    assert who.status_code == 404 and who.json()["field"] == "partner"
