"""Imported receipts are receipts like any other: the console's customer page lists them
(in-process on both databases, and in a real browser, which takes the docs' screenshot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect
from sqlalchemy import select

from kopilka.services import users
from kopilka.services.receipt_import import do_import_receipts
from kopilka.store import tables as t
from tests.conftest import Shop
from tests.web.conftest import MakeUser, login, shot

HISTORY = """receipt_id,occurred_at,store,customer,sku,name,category,quantity,price,amount
MSK-000101,2025-09-14T11:02:00,msk-tverskaya,LOY-000417,4601,"Молоко 3,2% 1 л",dairy,2,89.90,
MSK-000101,2025-09-14T11:02:00,msk-tverskaya,LOY-000417,2210,Яблоки Гала,fruit_veg,1.234,149.90,
SPB-004410,2025-10-02T19:40:00,spb-nevsky,LOY-000417,5120,Кофе в зёрнах,coffee,1,1899.00,1709.10
MSK-000388,2025-11-20,msk-tverskaya,LOY-000417,4602,Хлеб бородинский,bakery,1,54.00,
"""


async def imported_customer(shop: Shop, tmp_path: Path) -> int:
    path = tmp_path / "history.csv"
    path.write_text(HISTORY, encoding="utf-8")
    summary = await do_import_receipts(shop.rt, path, program=shop.code)
    assert summary.line() == (
        "imported 3 receipts (4 lines), skipped 0 already imported, rejected 0 receipts (0 lines)"
    )
    async with shop.rt.engine.connect() as conn:
        cid: int = (
            await conn.execute(
                select(t.customers.c.id).where(
                    t.customers.c.program_id == shop.program_id,
                    t.customers.c.external_id == "LOY-000417",
                )
            )
        ).scalar_one()
    return cid


async def test_the_customer_page_lists_imported_receipts(
    client: httpx.AsyncClient, make_user: MakeUser, make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()
    cid = await imported_customer(shop, tmp_path)
    who = await make_user("support", shop, locale="en")
    token, _ = await users.login(shop.rt, who.login, who.password, ip="127.0.0.1", user_agent="t")

    r = await client.get(
        f"/admin/customers/{cid}?tab=receipts", headers={"Cookie": f"kopilka_session={token}"}
    )

    assert r.status_code == 200, r.text[-500:]
    page = r.text
    # newest first; 2 x 89.90 + 1.234 x 149.90 (= 184.97666 -> 184.98) = 364.78
    positions = [page.index(x) for x in ("MSK-000388", "SPB-004410", "MSK-000101")]
    assert positions == sorted(positions)
    for text in ("spb-nevsky", "msk-tverskaya", "364.78 ₽", "1,709.10 ₽", "54.00 ₽"):
        assert text in page, text
    assert '<td data-testid="external-id">LOY-000417</td>' in page
    found = await client.get(
        "/admin/customers?q=LOY-000417", headers={"Cookie": f"kopilka_session={token}"}
    )
    assert f'href="/admin/customers/{cid}"' in found.text


async def test_imported_receipts_in_the_browser(
    page: Page, make_user: MakeUser, make_shop: Any, tmp_path: Path
) -> None:
    shop = await make_shop()
    cid = await imported_customer(shop, tmp_path)
    who = await make_user("support", shop, locale="ru")

    await login(page, who, next_url=f"/admin/customers/{cid}")

    rows = page.locator("table tr", has_text="msk-tverskaya")
    await expect(rows).to_have_count(2)
    await expect(page.locator("table tr", has_text="SPB-004410")).to_contain_text("1 709,10 ₽")
    await shot(page, "import-customer")
