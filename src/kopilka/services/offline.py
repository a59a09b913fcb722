"""Offline burn (issue 10, ADR 0030): signing keys, tokens for members, and the center's
side of a burn a till made without it.

- Keys: one Ed25519 key pair signs a program's tokens; ``do_rotate_keys`` makes a new one
  and retires the old, whose public key stays published until the last token it signed
  has expired.  A program's first token makes its first key.
- Tokens (``do_issue_token``): the cap is at most the program's ``offline_cap_max`` and at
  most what the account can spend now less the caps of its other live tokens.  Issuing
  reserves nothing; the card page or the app asking again gets the same token while it
  has half its life left (``channel`` records who asked first).
- Reconciliation (``check_burn`` / ``record_burn``, called by ``purchases`` inside the
  receipt's transaction, the account locked): the token is verified again, its burns are
  summed, and the receipt may burn at most what is left of the cap.  Points the lots do
  not cover become the account's debt.  A second receipt under one token is a *reuse*:
  applied within the cap and reported as a fraud alert; beyond the cap it is refused
  (``offline_cap_exceeded``) and reported too.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka import offline_verify as ov
from kopilka.domain import fraud as df
from kopilka.domain.ledger import balance_of
from kopilka.services.errors import ServiceError
from kopilka.services.runtime import Runtime
from kopilka.store import tables as t
from kopilka.store.queries.accounts import load_account
from kopilka.store.raw import SATx, Tx, cents, dec2, parse_ts, ts

ZERO = Decimal(0)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- keys --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicKey:
    key_id: int
    public_key: str  # base64url of the 32 raw bytes
    created_at: datetime
    retired_at: datetime | None
    valid_until: datetime | None  # None: the signing key


async def _new_key(conn: AsyncConnection, program_id: int, now: datetime) -> int:
    private = Ed25519PrivateKey.generate()
    key_id: int = (
        await conn.execute(
            insert(t.offline_keys).returning(t.offline_keys.c.id),
            {
                "program_id": program_id,
                "public_key": _b64(private.public_key().public_bytes_raw()),
                "private_key": _b64(private.private_bytes_raw()),
                "created_at": now,
            },
        )
    ).scalar_one()
    return key_id


async def do_rotate_keys(rt: Runtime, *, program_id: int) -> PublicKey:
    """A new signing key for the program; the old one retires (its public key is still
    published until every token it signed has expired)."""
    settings = await rt.program(program_id)
    now = rt.now()
    k = t.offline_keys
    async with rt.engine.begin() as conn:
        await conn.execute(
            update(k)
            .where(k.c.program_id == program_id, k.c.retired_at.is_(None))
            .values(
                retired_at=now,
                valid_until=now + timedelta(seconds=settings.offline_token_ttl_s) + ov.CLOCK_SKEW,
            )
        )
        key_id = await _new_key(conn, program_id, now)
    keys = await public_keys(rt, program_id=program_id)
    return next(x for x in keys if x.key_id == key_id)


async def public_keys(rt: Runtime, *, program_id: int) -> list[PublicKey]:
    """The keys a till must know: the signing key and retired keys whose tokens may still
    be valid; newest first."""
    now = rt.now()
    k = t.offline_keys
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(k.c.id, k.c.public_key, k.c.created_at, k.c.retired_at, k.c.valid_until)
                .where(
                    k.c.program_id == program_id,
                    (k.c.retired_at.is_(None)) | (k.c.valid_until > now),
                )
                .order_by(k.c.id.desc())
            )
        ).all()
    return [PublicKey(r.id, r.public_key, r.created_at, r.retired_at, r.valid_until) for r in rows]


# --- tokens ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    token_id: str
    key_id: int
    cap: Decimal
    issued_at: datetime
    expires_at: datetime


async def do_issue_token(
    rt: Runtime, *, program_id: int, account_id: int, card_number: str, channel: str
) -> IssuedToken:
    """A signed token for the member's virtual card; locks the account while it decides.

    Refusals: ``offline_burn_disabled`` (the program's ``offline_cap_max`` is 0),
    ``offline_nothing_to_burn`` (no points left once live tokens are counted)."""
    settings = await rt.program(program_id)
    if settings.offline_cap_max <= 0:
        raise ServiceError("offline_burn_disabled", "this program issues no offline tokens")
    now = rt.now()
    ttl = timedelta(seconds=settings.offline_token_ttl_s)
    tok = t.offline_tokens
    async with rt.engine.begin() as conn:
        account = await load_account(SATx(conn), account_id, lock=True)
        live = (
            await conn.execute(
                select(tok)
                .where(
                    tok.c.program_id == program_id,
                    tok.c.account_id == account_id,
                    tok.c.expires_at > now,
                )
                .order_by(tok.c.id.desc())
            )
        ).all()
        for row in live:  # shown again (page or app): the same token while it is fresh
            if row.expires_at - now >= ttl / 2:
                return IssuedToken(
                    row.token, row.token_id, row.key_id, row.cap, row.issued_at, row.expires_at
                )
        bal = balance_of(account.lots, held=account.held, debt=account.debt, now=now)
        room = bal.available - sum((r.cap for r in live), ZERO)
        step = settings.points_step
        cap = min(settings.offline_cap_max, (max(room, ZERO) / step).to_integral(ROUND_DOWN) * step)
        if cap <= 0:
            raise ServiceError(
                "offline_nothing_to_burn",
                "no points can be promised offline now",
                available=f"{bal.available:.2f}",
            )
        k = t.offline_keys
        key = (
            await conn.execute(
                select(k.c.id, k.c.private_key)
                .where(k.c.program_id == program_id, k.c.retired_at.is_(None))
                .order_by(k.c.id.desc())
                .limit(1)
            )
        ).first()
        if key is None:  # the program's first token makes its first key
            key_id = await _new_key(conn, program_id, now)
            private_text = (
                await conn.execute(select(k.c.private_key).where(k.c.id == key_id))
            ).scalar_one()
        else:
            key_id, private_text = key.id, key.private_key
        issued = now.replace(microsecond=0)
        expires = issued + ttl
        token_id = secrets.token_bytes(12)
        signed = ov.pack(
            key_id=key_id,
            program_id=program_id,
            account_id=account_id,
            card_number=card_number,
            cap=cap,
            issued_at=issued,
            expires_at=expires,
            token_id=token_id,
        )
        private = Ed25519PrivateKey.from_private_bytes(_unb64(private_text))
        text = ov.encode(signed, private.sign(signed))
        await conn.execute(
            insert(tok),
            {
                "program_id": program_id,
                "account_id": account_id,
                "token_id": token_id.hex(),
                "key_id": key_id,
                "cap": cap,
                "issued_at": issued,
                "expires_at": expires,
                "token": text,
                "channel": channel,
            },
        )
    return IssuedToken(text, token_id.hex(), key_id, cap, issued, expires)


# --- reconciliation (inside the receipt's transaction) -----------------------------------


@dataclass
class OfflineBurn:
    """What ``check_burn`` found; ``purchases`` fills ``debt`` and the receipt, and reports
    ``reuse`` after the commit."""

    token: ov.OfflineToken
    points: Decimal
    use_no: int
    burned_before: Decimal
    debt: Decimal = ZERO
    receipt_pk: int = 0

    @property
    def left(self) -> Decimal:
        """What the cap still allows, this receipt's burn not counted."""
        return self.token.cap - self.burned_before

    @property
    def reuse(self) -> bool:
        return self.use_no > 1


_KEY = "SELECT public_key, created_at, retired_at FROM offline_keys WHERE id = ? AND program_id = ?"
_BURNED = (
    "SELECT COUNT(*), COALESCE(SUM(points), 0) FROM offline_burns "
    "WHERE program_id = ? AND token_id = ?"
)
INSERT_BURN = (
    "INSERT INTO offline_burns (program_id, account_id, token_id, use_no, receipt_pk, "
    "terminal_id, points, debt, cap, occurred_at, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _invalid(reason: str, detail: str) -> ServiceError:
    if reason in ("expired", "not_yet_valid"):
        return ServiceError("offline_token_expired", detail, field="offline_token", reason=reason)
    return ServiceError("offline_token_invalid", detail, field="offline_token", reason=reason)


async def check_token(
    tx: Tx, *, program_id: int, text: str, occurred_at: datetime
) -> ov.OfflineToken:
    """The token, verified as a till would (signature, program, validity at the time of
    the sale) and against the key's retirement: a token a retired key signed after it
    retired is a forgery with a leaked key."""
    try:
        token = ov.parse(text)
    except ov.TokenRefused as exc:
        raise _invalid(exc.code, exc.detail) from None
    rows = await tx.fetch(_KEY, token.key_id, program_id)
    keys = {token.key_id: rows[0][0]} if rows else {}
    try:
        ov.verify(text, keys, program_id=program_id, at=occurred_at)
    except ov.TokenRefused as exc:
        raise _invalid(exc.code, exc.detail) from None
    retired_at = parse_ts(rows[0][2])
    if retired_at is not None and token.issued_at > retired_at + ov.CLOCK_SKEW:
        raise _invalid("retired_key", "the token was signed by a key after it was retired")
    return token


async def check_burn(
    tx: Tx, token: ov.OfflineToken, *, program_id: int, points: Decimal
) -> OfflineBurn:
    """The token's earlier burns and what the cap leaves; the account must be locked
    (two tills' receipts under one token are serialised by it).  Refuses a burn beyond
    the cap: ``offline_cap_exceeded``."""
    rows = await tx.fetch(_BURNED, program_id, token.token_id)
    uses, burned = int(rows[0][0]), dec2(int(rows[0][1]))
    burn = OfflineBurn(token, points, uses + 1, burned)
    if points > burn.left:
        raise ServiceError(
            "offline_cap_exceeded",
            f"the token allows {token.cap:.2f} points, {burned:.2f} were burned under it "
            f"already: {points:.2f} more is beyond its cap",
            field="redeem_points",
            cap=f"{token.cap:.2f}",
            burned_before=f"{burned:.2f}",
            token_id=token.token_id,
        )
    return burn


async def record_burn(
    tx: Tx, burn: OfflineBurn, *, terminal_id: int, occurred_at: datetime, now: datetime
) -> None:
    """The burn's row; the unique ``(program_id, token_id, use_no)`` backs 'once'."""
    tk = burn.token
    await tx.execute(
        INSERT_BURN,
        tk.program_id,
        tk.account_id,
        tk.token_id,
        burn.use_no,
        burn.receipt_pk,
        terminal_id,
        cents(burn.points),
        cents(burn.debt),
        cents(tk.cap),
        ts(tx, occurred_at),
        ts(tx, now),
    )


# --- reports -----------------------------------------------------------------------------


async def report(
    rt: Runtime,
    *,
    program_id: int,
    token: ov.OfflineToken,
    terminal_id: int,
    store_id: int | None,
    receipt_id: str,
    points: Decimal,
    outcome: str,
) -> None:
    """A fraud alert for a token used again (``applied``) or beyond its cap (``refused``);
    one alert per token, each receipt an item of its evidence."""
    from kopilka.services.fraud import save_finding

    now = rt.now()
    refused = outcome == "refused"
    finding = df.Finding(
        rule=df.Rule.OFFLINE_TOKEN,
        severity="high" if refused else "medium",
        subject_type="card",
        subject_id=token.card_number,
        subject_label=f"card {token.card_number[-4:]}",
        dedup_key=f"offline_token:{token.token_id}",
        summary=(
            f"Offline burn token {token.token_id[:8]}… used on more than one receipt"
            + (": a burn beyond its cap was refused" if refused else "")
        ),
        evidence=(
            {
                "key": f"offline:{terminal_id}:{receipt_id}",
                "kind": "offline_burn",
                "terminal_id": terminal_id,
                "receipt_id": receipt_id,
                "points": f"{points:.2f}",
                "cap": f"{token.cap:.2f}",
                "outcome": outcome,
                "at": now.isoformat(),
            },
        ),
        store_id=store_id,
        card_number=token.card_number,
    )
    async with rt.engine.begin() as conn:
        await save_finding(conn, program_id, finding, now)


@dataclass(frozen=True, slots=True)
class BurnRow:
    token_id: str
    use_no: int
    account_id: int
    terminal_id: int
    points: Decimal
    debt: Decimal
    cap: Decimal
    occurred_at: datetime
    created_at: datetime


async def burns(rt: Runtime, *, program_id: int, limit: int = 100) -> list[BurnRow]:
    """The latest offline burns applied, newest first (the console's list)."""
    b = t.offline_burns
    async with rt.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(b).where(b.c.program_id == program_id).order_by(b.c.id.desc()).limit(limit)
            )
        ).all()
    return [
        BurnRow(
            r.token_id,
            r.use_no,
            r.account_id,
            r.terminal_id,
            r.points,
            r.debt,
            r.cap,
            r.occurred_at,
            r.created_at,
        )
        for r in rows
    ]


async def count_reused(rt: Runtime, *, program_id: int) -> int:
    b = t.offline_burns
    async with rt.engine.connect() as conn:
        n = (
            await conn.execute(
                select(func.count()).where(b.c.program_id == program_id, b.c.use_no > 1)
            )
        ).scalar_one()
    return int(n)
