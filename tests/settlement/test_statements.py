"""Signed PDF statements: the signature verifies against the installation's certificate,
a changed byte breaks it, and the statement says what the clearing says."""

from __future__ import annotations

import io
import warnings
from datetime import UTC, datetime
from decimal import Decimal

from cryptography.utils import CryptographyDeprecationWarning
from pypdf import PdfReader

from kopilka.services import audit, settlement, settlement_files, signing
from tests.conftest import Clock
from tests.settlement.conftest import Coalition

with warnings.catch_warnings():  # pyHanko warns about DSA at import; nothing here uses DSA
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext


async def _status(data: bytes, cert_pem: bytes) -> tuple[bool, bool, bool]:
    (cert,) = load_certs_from_pemder_data(cert_pem)
    (sig,) = PdfFileReader(io.BytesIO(data)).embedded_signatures
    st = await async_validate_pdf_signature(sig, ValidationContext(trust_roots=[cert]))
    return st.intact, st.valid, st.trusted


def _text(data: bytes) -> str:
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


async def test_closing_signs_each_partner_s_statement(coalition: Coalition, clock: Clock) -> None:
    c = coalition
    program = await settlement.find_program(c.a.rt, c.a.code)
    await settlement.do_set_terms(
        c.a.rt, program, rate=Decimal("0.50"), fee_percent=Decimal("2"), actor=audit.CLI
    )
    clock.set(datetime(2026, 12, 1, 6, 0, tzinfo=UTC))

    await settlement.do_close(
        c.a.rt,
        program,
        "2026-11",
        actor=audit.CLI,
        statements=settlement_files.statement_maker(c.a.rt),
    )
    stored = await settlement.stored_statement(c.a.rt, program, "2026-11", c.b_partner)
    key = await signing.current_key(c.a.rt, create=False)

    assert stored is not None and key is not None
    assert await _status(stored, key.cert_pem) == (True, True, True)
    text = _text(stored).replace("\u00a0", " ").replace("\u202f", " ")
    assert 'ООО "Кофейня"' in text and "ИНН 7702345678" in text
    assert "2026-11" in text and "38,80" in text  # B's net: 58.80 received - 20.00 paid
    assert "Аптека вам должны" in text and "оператор вам должны" in text  # its counterparties
    assert key.fingerprint in text.replace("\n", "")  # which certificate to trust
    i = stored.rindex(b"38,80") if b"38,80" in stored else len(stored) // 3
    forged = stored[:i] + bytes([stored[i] ^ 1]) + stored[i + 1 :]
    intact, _, _ = await _status(forged, key.cert_pem)
    assert intact is False


async def test_another_key_does_not_verify(coalition: Coalition) -> None:
    c = coalition
    program = await settlement.find_program(c.a.rt, c.a.code)
    rep = await settlement.period_report(c.a.rt, program, "2026-11")
    data = await settlement_files.signed_statement(c.a.rt, rep, c.a.partner_id, "en")
    stranger = signing.make_key("someone else", datetime.now(UTC))

    key = await signing.current_key(c.a.rt, create=False)
    assert key is not None
    assert await _status(data, key.cert_pem) == (True, True, True)
    assert (await _status(data, stranger.cert_pem))[2] is False
    assert "preliminary: the period is open" in _text(data)
