"""The till's JavaScript verifier (api/static/offline-verify.js) in headless Chromium,
against tokens made by the Python side: genuine, each byte flipped, expired, for another
program, beyond the cap; with the browser's WebCrypto Ed25519 and with the vendored
@noble/ed25519 fallback."""

from __future__ import annotations

import base64
import functools
import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import Browser

from kopilka import offline_verify as ov
from kopilka.api.app import STATIC
from tests.services.conftest import _free_port

ISSUED = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
PUBLIC = base64.urlsafe_b64encode(KEY.public_key().public_bytes_raw()).decode().rstrip("=")


def _token(*, program_id: int = 3, cap: str = "300", key: Ed25519PrivateKey = KEY) -> str:
    signed = ov.pack(
        key_id=7,
        program_id=program_id,
        account_id=2**40 + 5,
        card_number="2700000000017",
        cap=Decimal(cap),
        issued_at=ISSUED,
        expires_at=ISSUED + timedelta(minutes=15),
        token_id=bytes.fromhex("00112233445566778899aabb"),
    )
    return ov.encode(signed, key.sign(signed))


def _flipped(text: str) -> list[str]:
    body = text[2:]
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    out = []
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x80
        out.append("KO" + base64.b32encode(bytes(bad)).decode().rstrip("="))
    return out


@pytest.fixture(scope="module")
def static_base() -> Iterator[str]:
    """The static folder over HTTP on 127.0.0.1 (a secure context, as a till's page)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        extensions_map: ClassVar[dict[str, str]] = {
            **http.server.SimpleHTTPRequestHandler.extensions_map,
            ".js": "text/javascript",
        }

        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(STATIC))
    port = _free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


RUN = """async ([engine, cases, key]) => {
  const m = await import("/offline-verify.js");
  const used = await m.ed25519Engine(engine);
  const keys = [{key_id: 7, public_key: key}];
  const out = [];
  for (const c of cases) {
    const r = await m.verifyToken(c.text, keys,
      {programId: 3, at: new Date(c.at), points: c.points});
    out.push(r.ok ? {ok: true, cap: r.cap, card: r.card, account: r.accountId.toString(),
                     token: r.tokenId, expires: r.expiresAt.toISOString()}
                  : {ok: false, code: r.code});
  }
  return {used, out};
}"""


@pytest.mark.parametrize("engine", ["webcrypto", "noble"])
async def test_the_js_verifier_agrees_with_python(
    browser: Browser, static_base: str, engine: str
) -> None:
    good = _token()
    at = (ISSUED + timedelta(minutes=5)).isoformat()
    late = (ISSUED + timedelta(minutes=17, seconds=1)).isoformat()
    cases = [
        {"text": good, "at": at, "points": "300.00"},
        {"text": good, "at": late},
        {"text": good, "at": at, "points": "300.01"},
        {"text": _token(program_id=4), "at": at},
        {"text": _token(key=Ed25519PrivateKey.generate()), "at": at},
        {"text": good[:-1], "at": at},
    ] + [{"text": t, "at": at} for t in _flipped(good)]
    page = await browser.new_page()
    try:
        await page.goto(static_base + "/offline-verify.js")
        got = await page.evaluate(RUN, [engine, cases, PUBLIC])
    finally:
        await page.close()
    out = got["out"]

    assert got["used"] == engine
    assert out[0] == {
        "ok": True,
        "cap": "300.00",
        "card": "2700000000017",
        "account": str(2**40 + 5),
        "token": "00112233445566778899aabb",
        "expires": "2026-12-07T09:15:00.000Z",
    }
    assert [x.get("code") for x in out[1:6]] == [
        "expired",
        "over_cap",
        "wrong_program",
        "bad_signature",
        "malformed",
    ]
    flipped = out[6:]
    assert len(flipped) == 117
    assert not any(x["ok"] for x in flipped)
    # as the Python library says for the same bytes
    for case, x in zip(cases[6:], flipped, strict=True):
        with pytest.raises(ov.TokenRefused) as exc:
            ov.verify(case["text"], {7: PUBLIC}, program_id=3, at=ISSUED + timedelta(minutes=5))
        assert x["code"] == exc.value.code
