"""``kopilka import receipts FILE.csv``: years of receipts from a chain's old system.

Imported receipts are, from then on, ordinary confirmed receipts (``source = 'import'``):
the reports, the console and the till's history see them like any other.  No points move:
history, not sales; the ledger is not touched.

How a file goes in (ADR 0014):

1. **Scan** (``scan``): the header is checked (a missing column stops everything, exit
   code 2) and, for every receipt id, the file line of its *last* row is noted.  Rows of one
   receipt need not be adjacent: a receipt is complete when its last row has been read.
2. **Read**: each row is checked (``domain.receipt_import``) and kept with its receipt
   until the receipt is complete; a receipt with a bad row goes, every row of it, to the
   rejects file, and the others carry on.
3. **Write**, a batch of complete receipts per transaction: receipts already imported
   (``imported_receipts``, keyed by program and the old receipt id) are skipped; stores
   and customers are found or created; receipts, lines and the import keys are written by
   the driver itself (COPY on PostgreSQL, ``executemany`` on SQLite).  A batch is one
   transaction, so a receipt is imported whole or not at all.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import queue
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from kopilka.domain.identifiers import make_card_number
from kopilka.domain.receipt_import import (
    LIMITS,
    Columns,
    HeaderError,
    ImportLine,
    ImportReceipt,
    ReceiptError,
    RowError,
    assemble,
    delimiter_of,
    parse_row,
    read_header,
)
from kopilka.services import audit
from kopilka.services.audit import Actor
from kopilka.services.errors import ServiceError
from kopilka.services.phones import to_e164
from kopilka.services.purchases import identifier_values
from kopilka.services.runtime import Runtime, hash_key
from kopilka.store import tables as t
from kopilka.store.raw import Tx, UniqueViolation, ts

DEFAULT_STORE = "import"
TERMINAL_NAME = "import"
BATCH_LINES = 20_000
VIRTUAL_CARD_PREFIX = "29"
CACHE_MAX = 500_000  # customers remembered between batches


class ImportFileError(Exception):
    """The file cannot be imported at all (unreadable, not UTF-8, a column missing)."""


# --- pass 1: the header and where each receipt ends -------------------------------------


@dataclass
class Plan:
    path: Path
    header: list[str]
    columns: Columns
    delimiter: str
    last_line: dict[str, int]  # receipt id -> file line of its last row
    rows: int  # data rows (blank lines not counted)


def _open(path: Path) -> TextIO:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def records(f: TextIO, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first file line, fields) of every CSV record after the header (RFC 4180 quoting:
    a quoted field may span lines, so a record's line is where it starts)."""
    reader = csv.reader(f, delimiter=delimiter)
    try:
        next(reader)
        last = reader.line_num
        for fields in reader:
            start, last = last + 1, reader.line_num
            if fields and (len(fields) > 1 or fields[0].strip()):
                yield start, fields
    except UnicodeDecodeError:
        raise ImportFileError(_not_utf8(f)) from None
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: {exc}") from None


def _not_utf8(f: TextIO) -> str:
    """The message for a file that is not UTF-8, naming its first such line (found by
    reading it again as bytes: only on this error path)."""
    line = 0
    with open(f.name, "rb") as raw:
        for n, data in enumerate(raw, 1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                line = n
                break
    where = f" (line {line})" if line else ""
    return f"the file is not UTF-8 text{where}: save it as CSV in UTF-8"


def scan(path: Path) -> Plan:
    """Pass 1: check the header, note each receipt's last line; ``ImportFileError``."""
    with _open(path) as f:
        try:
            first = f.readline()
        except UnicodeDecodeError:
            raise ImportFileError(_not_utf8(f)) from None
        if not first.strip():
            raise ImportFileError("the file is empty (no header line)")
        delimiter = delimiter_of(first)
        header = next(csv.reader([first], delimiter=delimiter))
        try:
            columns = read_header(header)
        except HeaderError as exc:
            raise ImportFileError(str(exc)) from None
        try:
            f.seek(0)
        except OSError:  # io.UnsupportedOperation too
            raise ImportFileError("not a regular file (it is read twice: give a file)") from None
        last: dict[str, int] = {}
        n = 0
        i = columns.receipt_id
        for line_no, fields in records(f, delimiter):
            n += 1
            if len(fields) > i:
                last[fields[i].strip()] = line_no
    last.pop("", None)
    return Plan(path, header, columns, delimiter, last, n)


# --- the outcome ---------------------------------------------------------------------------


@dataclass
class Summary:
    imported: int = 0
    imported_lines: int = 0
    skipped: int = 0
    skipped_lines: int = 0
    rejected: int = 0
    rejected_lines: int = 0
    new_customers: int = 0
    new_stores: int = 0
    rows: int = 0
    seconds: float = 0.0
    rejects_path: Path | None = None

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        text = (
            f"imported {self.imported} receipts ({self.imported_lines} lines), "
            f"skipped {self.skipped} already imported, "
            f"rejected {self.rejected} receipts ({self.rejected_lines} lines)"
        )
        if self.rejected and self.rejects_path is not None:
            text += f" -> {self.rejects_path}"
        return text


Progress = Callable[[int, int], None]  # (rows done, rows in the file)


@dataclass(frozen=True, slots=True)
class StoreRef:
    store_id: int
    partner_id: int
    terminal_id: int


@dataclass(frozen=True, slots=True)
class CustomerRef:
    customer_id: int
    account_id: int | None
    card_id: int | None


_Batch = tuple[list[tuple[ImportReceipt, str]], int]


@dataclass
class _Pending:
    rows: list[tuple[int, list[str], ImportLine | None, str | None]] = field(default_factory=list)


# --- the rejects file ------------------------------------------------------------------------


class Rejects:
    """Rows of refused receipts: ``line, receipt_id, reason`` and the row as it was.
    The file is created with the first refusal only."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        self.header = [h.strip().lstrip("\ufeff") for h in header]
        self._f: TextIO | None = None
        self._w: Any = None

    def write(self, line: int, receipt_id: str, reason: str, fields: Sequence[str]) -> None:
        if self._w is None:
            self._f = self.path.open("w", encoding="utf-8", newline="")
            self._w = csv.writer(self._f, lineterminator="\n")
            self._w.writerow(["line", "receipt_id", "reason", *self.header])
        self._w.writerow([line, receipt_id, reason, *fields])

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


# --- the importer -----------------------------------------------------------------------------


class ReceiptImporter:
    """One run of ``kopilka import receipts`` over one file for one program."""

    def __init__(
        self,
        rt: Runtime,
        *,
        program_id: int,
        tz: tzinfo,
        store_timezone: str,
        default_store: str = DEFAULT_STORE,
        batch_lines: int = BATCH_LINES,
        progress: Progress | None = None,
    ) -> None:
        self.rt = rt
        self.program_id = program_id
        self.tz = tz
        self.store_timezone = store_timezone
        self.default_store = default_store
        self.batch_lines = batch_lines
        self.progress = progress
        self.now = rt.now()
        self.summary = Summary()
        self.stores: dict[str, StoreRef] = {}
        self.customers: dict[str, CustomerRef] = {}
        self.partner_id: int | None = None
        self.version = 1
        self._made = {"stores": 0, "customers": 0}
        self._skipped_unread = [0, 0]  # receipts, lines: known before the rows were read
        self.hours: set[datetime] = set()  # when the imported receipts happened, by the hour

    async def run(self, plan: Plan, rejects_path: Path) -> Summary:
        started = time.perf_counter()
        self.summary.rows = plan.rows
        self.summary.rejects_path = rejects_path
        self.version = await self._program_version()
        rejects = Rejects(rejects_path, plan.header)
        try:
            known = await self._imported_before(list(plan.last_line))
            async for batch, done in in_thread(self._batches(plan, rejects, known)):
                if batch:
                    await self._flush(batch)
                self._tick(done, plan.rows)
        finally:
            rejects.close()
        self.summary.skipped += self._skipped_unread[0]
        self.summary.skipped_lines += self._skipped_unread[1]
        await self._refresh_summary_tables()
        self.summary.seconds = time.perf_counter() - started
        await self._audit(plan)
        return self.summary

    async def _refresh_summary_tables(self) -> None:
        """The reports' daily summary tables are kept by the worker from a watermark of
        writing times; imported receipts carry their own past times, so their days are
        re-aggregated here, once, at the end of the run."""
        from kopilka.analytics import facts

        if self.hours:
            await facts.refresh_days(self.rt, self.program_id, self.hours)

    def _batches(self, plan: Plan, rejects: Rejects, known: set[str]) -> Iterator[_Batch]:
        """Complete receipts in batches of about ``batch_lines`` lines, with the count
        of rows read so far.  Runs in a worker thread (``in_thread``) while the previous
        batch is being written; it writes only the rejects file and the summary's
        ``rejected`` counts and ``_skipped_unread``, which nothing else touches meanwhile.
        Receipts imported by an earlier run are skipped unread."""
        cols, tz, now, last_line = plan.columns, self.tz, self.now, plan.last_line
        pending: dict[str, _Pending] = {}
        batch: list[tuple[ImportReceipt, str]] = []
        batch_lines = done = 0
        rid_at = cols.receipt_id
        with _open(plan.path) as f:
            for line_no, fields in records(f, plan.delimiter):
                done += 1
                rid = fields[rid_at].strip() if len(fields) > rid_at else ""
                if rid in known:
                    self._skipped_unread[1] += 1
                    if last_line[rid] == line_no:
                        self._skipped_unread[0] += 1
                    continue
                try:
                    parsed: ImportLine | None = parse_row(fields, cols, tz=tz, now=now)
                    reason = None
                except RowError as exc:
                    parsed, reason = None, str(exc)
                if not rid:
                    self._reject(rejects, rid, [(line_no, fields, parsed, reason)])
                    continue
                p = pending.setdefault(rid, _Pending())
                p.rows.append((line_no, fields, parsed, reason))
                if last_line.get(rid) != line_no:
                    continue
                del pending[rid]
                receipt = self._complete(rejects, rid, p)
                if receipt is None:
                    continue
                batch.append((receipt, _digest(p)))
                batch_lines += len(receipt.lines)
                if batch_lines >= self.batch_lines:
                    yield batch, done
                    batch, batch_lines = [], 0
        for rid, p in pending.items():  # only if the file changed since the scan
            rows = [(n, f, x, "the file changed while it was imported") for n, f, x, _ in p.rows]
            self._reject(rejects, rid, rows)
        yield batch, done

    def _tick(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)

    def _complete(self, rejects: Rejects, rid: str, p: _Pending) -> ImportReceipt | None:
        """The receipt of its rows, or ``None`` (every row written to the rejects)."""
        if any(reason is not None for *_, reason in p.rows):
            self._reject(rejects, rid, p.rows)
            return None
        try:
            return assemble([(n, x) for n, _, x, _ in p.rows if x is not None])
        except ReceiptError as exc:
            rows = [(n, f, x, str(exc) if n == exc.line else None) for n, f, x, _ in p.rows]
            self._reject(rejects, rid, rows)
            return None

    def _reject(
        self,
        rejects: Rejects,
        rid: str,
        rows: Sequence[tuple[int, list[str], ImportLine | None, str | None]],
    ) -> None:
        bad = [n for n, _, _, reason in rows if reason is not None]
        for n, fields, _, reason in rows:
            why = reason or f"another line of this receipt was refused (line {bad[0]})"
            rejects.write(n, rid, why, fields)
        self.summary.rejected += 1
        self.summary.rejected_lines += len(rows)

    async def _flush(self, batch: list[tuple[ImportReceipt, str]]) -> None:
        """Write a batch in one transaction; a unique key hit by a concurrent import of
        the same receipts or customers rolls it back, and it is tried again (those rows
        are then found, not created)."""
        for attempt in range(3):
            try:
                await self._write_batch(batch)
                return
            except UniqueViolation:
                self.partner_id = None  # it may have been made by the rolled-back attempt
                if attempt == 2:
                    raise

    async def _write_batch(self, batch: list[tuple[ImportReceipt, str]]) -> None:
        new_stores: dict[str, StoreRef] = {}
        new_customers: dict[str, CustomerRef] = {}
        self._made = {"stores": 0, "customers": 0}  # by this attempt
        async with self.rt.hot.tx() as tx:
            done = await self._already_imported(tx, [r.receipt_id for r, _ in batch])
            fresh = [r for r, _ in batch if r.receipt_id not in done]
            stores = await self._resolve_stores(tx, fresh, new_stores)
            custs = await self._resolve_customers(tx, fresh, stores, new_customers)
            digests = [d for r, d in batch if r.receipt_id not in done]
            await self._write_receipts(tx, fresh, digests, stores, custs)
        # committed: remember what now exists
        self.stores.update(new_stores)
        if len(self.customers) > CACHE_MAX:
            self.customers.clear()
        self.customers.update(new_customers)
        s = self.summary
        s.new_stores += self._made["stores"]
        s.new_customers += self._made["customers"]
        s.imported += len(fresh)
        s.imported_lines += sum(len(r.lines) for r in fresh)
        s.skipped += len(batch) - len(fresh)
        s.skipped_lines += sum(len(r.lines) for r, _ in batch if r.receipt_id in done)

    # --- idempotency ---------------------------------------------------------------------

    async def _imported_before(self, ids: list[str]) -> set[str]:
        """The file's receipt ids that an earlier run imported (read before the rows,
        so that a re-run reads them no further)."""
        known: set[str] = set()
        async with self.rt.hot.read() as tx:
            for start in range(0, len(ids), 10_000):
                known |= await self._already_imported(tx, ids[start : start + 10_000])
        return known

    async def _already_imported(self, tx: Tx, ids: list[str]) -> set[str]:
        rows = await fetch_in(
            tx,
            "SELECT receipt_id FROM imported_receipts WHERE program_id = ? AND receipt_id",
            [self.program_id],
            ids,
        )
        return {r[0] for r in rows}

    # --- stores ----------------------------------------------------------------------------

    async def _resolve_stores(
        self, tx: Tx, fresh: list[ImportReceipt], new: dict[str, StoreRef]
    ) -> dict[str, StoreRef]:
        codes = {r.store or self.default_store for r in fresh}
        found = {c: self.stores[c] for c in codes if c in self.stores}
        missing = sorted(codes - found.keys())
        if not missing:
            return found
        rows = await fetch_in(
            tx,
            "SELECT s.code, s.id, s.partner_id, (SELECT min(tm.id) FROM terminals tm "
            "WHERE tm.store_id = s.id AND tm.name = ? AND tm.status = 'disabled') "
            "FROM stores s WHERE s.program_id = ? AND s.code",
            [TERMINAL_NAME, self.program_id],
            missing,
        )
        existing = {r[0]: (int(r[1]), int(r[2]), _int(r[3])) for r in rows}
        unknown = [c for c in missing if c not in existing]
        if unknown:
            partner_id = await self._partner(tx)
            ids = await _new_ids(tx, "stores", len(unknown))
            tz, pid = self.store_timezone, self.program_id
            await _copy(
                tx,
                "stores",
                STORE_COLS,
                [
                    (i, pid, partner_id, c, c, "", "", "", tz)
                    for i, c in zip(ids, unknown, strict=True)
                ],
            )
            existing.update({c: (i, partner_id, None) for i, c in zip(ids, unknown, strict=True)})
            self._made["stores"] += len(unknown)
        bare = [c for c in missing if existing[c][2] is None]
        terminals = dict(
            zip(bare, await self._insert_terminals(tx, [existing[c][0] for c in bare]), strict=True)
        )
        for code in missing:
            store_id, partner_id, terminal_id = existing[code]
            ref = StoreRef(store_id, partner_id, terminal_id or terminals[code])
            found[code] = new[code] = ref
        return found

    async def _partner(self, tx: Tx) -> int:
        """The program's default partner: its first; one is created if it has none."""
        if self.partner_id is None:
            rows = await tx.fetch(
                "SELECT min(id) FROM partners WHERE program_id = ?", self.program_id
            )
            if rows[0][0] is None:
                rows = await tx.fetch(
                    "INSERT INTO partners (program_id, code, name) VALUES (?, 'main', 'main') "
                    "RETURNING id",
                    self.program_id,
                )
            self.partner_id = int(rows[0][0])
        return self.partner_id

    async def _insert_terminals(self, tx: Tx, store_ids: list[int]) -> list[int]:
        """Each store's import terminal: disabled, with a key nobody ever sees, so it can
        never sell; receipts need a terminal, and this one tells where they came from."""
        ids = await _new_ids(tx, "terminals", len(store_ids))
        now = ts(tx, self.now)
        rows = [
            (i, self.program_id, store_id, TERMINAL_NAME, hash_key(secrets.token_urlsafe(32)),
             "import", "disabled", now, now)
            for i, store_id in zip(ids, store_ids, strict=True)
        ]  # fmt: skip
        await _copy(tx, "terminals", TERMINAL_COLS, rows)
        return ids

    # --- customers -------------------------------------------------------------------------

    async def _resolve_customers(
        self,
        tx: Tx,
        fresh: list[ImportReceipt],
        stores: dict[str, StoreRef],
        new: dict[str, CustomerRef],
    ) -> dict[str, CustomerRef]:
        """Each customer value of the batch: by external id, else by a card, phone or QR
        identifier (as the till finds them), else a new customer."""
        first_seen: dict[str, ImportReceipt] = {}
        for r in fresh:
            if r.customer and r.customer not in self.customers:
                seen = first_seen.get(r.customer)
                if seen is None or r.occurred_at < seen.occurred_at:
                    first_seen[r.customer] = r
        found = {v: self.customers[v] for r in fresh if (v := r.customer) in self.customers}
        if not first_seen:
            return found
        by_ext = await self._by_external_id(tx, sorted(first_seen))
        found.update(by_ext)
        new.update(by_ext)
        rest = [v for v in first_seen if v not in by_ext]
        by_ident = await self._by_identifier(tx, rest)
        found.update(by_ident)
        new.update(by_ident)
        unknown = [v for v in rest if v not in by_ident]
        if unknown:
            created = await self._create_customers(tx, unknown, first_seen, stores)
            found.update(created)
            new.update(created)
        return found

    async def _by_external_id(self, tx: Tx, values: list[str]) -> dict[str, CustomerRef]:
        rows = await fetch_in(
            tx,
            # a customer merged into another (a duplicate) buys as the one who absorbed it
            "SELECT cu.external_id, k.id, a.id, (SELECT min(c.id) FROM cards c "
            "WHERE c.customer_id = k.id AND c.status = 'active') FROM customers cu "
            "JOIN customers k ON k.id = coalesce(cu.merged_into_id, cu.id) "
            "LEFT JOIN accounts a ON a.customer_id = k.id "
            "WHERE cu.program_id = ? AND cu.external_id",
            [self.program_id],
            values,
        )
        return {r[0]: CustomerRef(int(r[1]), _int(r[2]), _int(r[3])) for r in rows}

    async def _by_identifier(self, tx: Tx, values: list[str]) -> dict[str, CustomerRef]:
        if not values:
            return {}
        wanted = {v: identifier_values(v) for v in values}
        rows = await fetch_in(
            tx,
            "SELECT i.value, c.customer_id, c.account_id, c.id FROM identifiers i "
            "JOIN cards c ON c.id = i.card_id WHERE i.program_id = ? AND i.value",
            [self.program_id],
            sorted({x for xs in wanted.values() for x in xs}),
        )
        hits = {r[0]: CustomerRef(int(r[1]), int(r[2]), int(r[3])) for r in rows}
        out: dict[str, CustomerRef] = {}
        for v, candidates in wanted.items():
            for c in candidates:
                if c in hits:
                    out[v] = hits[c]
                    break
        return out

    async def _create_customers(
        self,
        tx: Tx,
        values: list[str],
        first_seen: dict[str, ImportReceipt],
        stores: dict[str, StoreRef],
    ) -> dict[str, CustomerRef]:
        """New customers with ``external_id`` = the value, an account and a virtual card
        (as a registration at the till makes), and the value's phone when it is one that
        nobody has.  Two values of the same phone in one batch are one customer."""
        phones = await self._free_phones(tx, values)
        makers: dict[str, str] = {}  # value -> value whose new customer it is
        by_phone: dict[str, str] = {}
        for v in values:
            phone = phones.get(v)
            makers[v] = by_phone.setdefault(phone, v) if phone else v
        creators = [v for v in values if makers[v] == v]
        ids = await _new_ids(tx, "customers", len(creators))
        acc_ids = await _new_ids(tx, "accounts", len(creators))
        card_ids = await _new_ids(tx, "cards", len(creators))
        numbers = await self._card_numbers(tx, len(creators))
        cust_rows, acc_rows, card_rows, ident_rows = [], [], [], []
        refs: dict[str, CustomerRef] = {}
        for v, cid, aid, card_id, number in zip(
            creators, ids, acc_ids, card_ids, numbers, strict=True
        ):
            r = first_seen[v]
            when = ts(tx, r.occurred_at)
            phone = phones.get(v)
            home = stores[r.store or self.default_store].store_id
            cust_rows.append((cid, self.program_id, v, phone, when, home))
            acc_rows.append((aid, self.program_id, cid, when, when))
            card_rows.append((card_id, self.program_id, aid, cid, number, "virtual", when))
            ident_rows.append((self.program_id, number, "card", card_id))
            if phone:
                ident_rows.append((self.program_id, phone, "phone", card_id))
            refs[v] = CustomerRef(cid, aid, card_id)
        await _copy(tx, "customers", CUSTOMER_COLS, cust_rows)
        await _copy(tx, "accounts", ACCOUNT_COLS, acc_rows)
        await _copy(tx, "cards", CARD_COLS, card_rows)
        await _copy(tx, "identifiers", IDENT_COLS, ident_rows)
        self._made["customers"] += len(creators)
        return {v: refs[makers[v]] for v in values}

    async def _free_phones(self, tx: Tx, values: list[str]) -> dict[str, str]:
        """value -> E.164 phone, for values that are valid phones no customer has."""
        phones: dict[str, str] = {}
        for v in values:
            digits = sum(ch.isdigit() for ch in v)
            if 10 <= digits <= 12 and all(ch.isdigit() or ch in "+()- " for ch in v):
                phone = to_e164(v)
                if phone:
                    phones[v] = phone
        if not phones:
            return {}
        taken = {
            r[0]
            for r in await fetch_in(
                tx,
                "SELECT phone FROM customers WHERE program_id = ? AND phone",
                [self.program_id],
                sorted(set(phones.values())),
            )
        }
        return {v: p for v, p in phones.items() if p not in taken}

    async def _card_numbers(self, tx: Tx, n: int) -> list[str]:
        """``n`` random virtual card numbers no identifier of the program has."""
        numbers: set[str] = set()
        while len(numbers) < n:
            want = {
                make_card_number(VIRTUAL_CARD_PREFIX, secrets.randbelow(10**10))
                for _ in range(n - len(numbers))
            }
            taken = await fetch_in(
                tx,
                "SELECT value FROM identifiers WHERE program_id = ? AND value",
                [self.program_id],
                sorted(want - numbers),
            )
            numbers |= want - {r[0] for r in taken}
        return sorted(numbers)[:n]

    # --- receipts ---------------------------------------------------------------------------

    async def _write_receipts(
        self,
        tx: Tx,
        fresh: list[ImportReceipt],
        digests: list[str],
        stores: dict[str, StoreRef],
        custs: dict[str, CustomerRef],
    ) -> None:
        ids = await _new_ids(tx, "receipts", len(fresh))
        receipts, lines, keys = [], [], []
        pid, now = self.program_id, ts(tx, self.now)
        for pk, r, digest in zip(ids, fresh, digests, strict=True):
            s = stores[r.store or self.default_store]
            c = custs.get(r.customer) if r.customer else None
            when = ts(tx, r.occurred_at)
            self.hours.add(r.occurred_at.replace(minute=0, second=0, microsecond=0))
            amount = r.amount_cents
            receipts.append(
                (
                    pk,
                    pid,
                    s.partner_id,
                    s.store_id,
                    s.terminal_id,
                    r.receipt_id,
                    c.account_id if c else None,
                    c.customer_id if c else None,
                    c.card_id if c else None,
                    "confirmed",
                    when,
                    when,
                    when,
                    amount,
                    0,
                    0,
                    0,
                    amount,
                    0,
                    self.version,
                    digest,
                    "import",
                )
            )
            for i, x in enumerate(r.lines):
                lines.append(
                    (
                        pk,
                        i,
                        pid,
                        x.sku,
                        x.name,
                        x.category,
                        x.quantity_milli,
                        x.price_cents,
                        x.amount_cents,
                        0,
                        0,
                        0,
                        x.amount_cents,
                        0,
                        0,
                    )
                )
            keys.append((pid, r.receipt_id, pk, now))
        await _copy(tx, "receipts", RECEIPT_COLS, receipts)
        await _copy(tx, "receipt_lines", LINE_COLS, lines)
        await _copy(tx, "imported_receipts", KEY_COLS, keys)

    async def _program_version(self) -> int:
        async with self.rt.engine.connect() as conn:
            v = (
                await conn.execute(
                    select(t.programs.c.version).where(t.programs.c.id == self.program_id)
                )
            ).scalar_one()
        return int(v)

    async def _audit(self, plan: Plan) -> None:
        """One audit row per run: who imported what file, and what came of it."""
        s = self.summary
        async with self.rt.engine.begin() as conn:
            await audit.record(
                conn,
                Actor("cli", None, "kopilka import receipts"),
                "receipts.import",
                "file",
                plan.path.name[:64],
                at=self.rt.now(),
                program_id=self.program_id,
                after={
                    "imported": s.imported,
                    "lines": s.imported_lines,
                    "skipped": s.skipped,
                    "rejected": s.rejected,
                    "rejected_lines": s.rejected_lines,
                    "new_customers": s.new_customers,
                    "new_stores": s.new_stores,
                },
            )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _digest(p: _Pending) -> str:
    """The receipt's ``request_hash``: a digest of its rows as the file has them."""
    text = "\x1e".join("\x1f".join(fields) for _, fields, _, _ in p.rows)
    return hashlib.sha256(text.encode()).hexdigest()


# --- plumbing ---------------------------------------------------------------------------------

T = TypeVar("T")


async def in_thread(items: Iterator[T], *, depth: int = 2) -> AsyncIterator[T]:
    """The items of a blocking iterator, made in a worker thread up to ``depth`` ahead:
    the file is read and checked while the database writes the previous batch (the
    driver waits without the GIL).  Leaving early stops the thread."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))
            return
        put(("end", None))

    def get() -> tuple[str, Any]:
        while not stop.is_set():  # never blocked for good: a cancelled run sets stop
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return ("end", None)

    worker = asyncio.get_running_loop().run_in_executor(None, work)
    try:
        while True:
            kind, value = await asyncio.to_thread(get)
            if kind == "end":
                break
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        await worker


# --- the driver ------------------------------------------------------------------------------

RECEIPT_COLS = (
    "id",
    "program_id",
    "partner_id",
    "store_id",
    "terminal_id",
    "pos_receipt_id",
    "account_id",
    "customer_id",
    "card_id",
    "state",
    "occurred_at",
    "created_at",
    "confirmed_at",
    "amount",
    "discount",
    "points_redeemed",
    "redeemed_value",
    "to_pay",
    "points_earned",
    "program_version",
    "request_hash",
    "source",
)
LINE_COLS = (
    "receipt_pk",
    "idx",
    "program_id",
    "sku",
    "name",
    "category",
    "quantity",
    "price",
    "amount",
    "discount",
    "points_redeemed",
    "redeemed_value",
    "to_pay",
    "points_earned",
    "refunded_quantity",
)
STORE_COLS = (
    "id", "program_id", "partner_id", "code", "name", "address", "city", "region", "timezone",
)  # fmt: skip
TERMINAL_COLS = (
    "id", "program_id", "store_id", "name", "key_hash", "key_prefix", "status", "created_at",
    "disabled_at",
)  # fmt: skip
KEY_COLS = ("program_id", "receipt_id", "receipt_pk", "imported_at")
CUSTOMER_COLS = ("id", "program_id", "external_id", "phone", "registered_at", "home_store_id")
ACCOUNT_COLS = ("id", "program_id", "customer_id", "created_at", "updated_at")
CARD_COLS = ("id", "program_id", "account_id", "customer_id", "number", "kind", "created_at")
IDENT_COLS = ("program_id", "value", "kind", "card_id")

IN_CHUNK = 500


async def fetch_in(tx: Tx, head: str, args: list[Any], values: Sequence[Any]) -> list[Any]:
    """``head`` ends with a column; rows where it is one of ``values`` (any number)."""
    out: list[Any] = []
    if tx.pg:
        if values:
            out = await tx.fetch(head + " = ANY(?)", *args, list(values))
        return out
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        sql = head + " IN (" + ", ".join("?" * len(chunk)) + ")"
        out += await tx.fetch(sql, *args, *chunk)
    return out


async def _new_ids(tx: Tx, table: str, n: int) -> list[int]:
    """``n`` fresh primary keys for ``table``: from its sequence on PostgreSQL; above the
    largest on SQLite (the caller holds the write lock, so nobody else takes them)."""
    if n == 0:
        return []
    if tx.pg:
        rows = await tx.fetch(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
            "FROM generate_series(1, ?::int)",
            n,
        )
        return [int(r[0]) for r in rows]
    top = (await tx.fetch(f"SELECT coalesce(max(id), 0) FROM {table}"))[0][0]
    return list(range(int(top) + 1, int(top) + 1 + n))


async def _copy(tx: Tx, table: str, cols: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows into ``table`` by the fastest way each driver has: COPY on PostgreSQL, one
    prepared ``executemany`` on SQLite."""
    if not rows:
        return
    if tx.pg:
        conn: Any = tx.conn  # type: ignore[attr-defined]
        try:
            await conn.copy_records_to_table(table, records=rows, columns=list(cols))
        except Exception as exc:
            if type(exc).__name__ == "UniqueViolationError":
                raise UniqueViolation(str(exc)) from exc
            raise
        return
    marks = ", ".join("?" * len(cols))
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})"
    try:
        await tx.executemany(sql, rows)
    except Exception as exc:
        if "UNIQUE" in str(exc):
            raise UniqueViolation(str(exc)) from exc
        raise


# --- the use case ------------------------------------------------------------------------------


def default_rejects(path: Path) -> Path:
    """``FILE.csv`` -> ``FILE.rejects.csv`` next to it."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + ".rejects" + (path.suffix or ".csv"))


async def _program(rt: Runtime, code: str | None) -> tuple[int, str]:
    """(id, time zone) of the program with ``code``, or of the only program."""
    q = select(t.programs.c.id, t.programs.c.code)
    if code is not None:
        q = q.where(t.programs.c.code == code)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(q.limit(2))).all()
    if code is not None and not rows:
        raise ServiceError("validation_failed", f"no program {code!r}", field="program")
    if code is None and len(rows) != 1:
        raise ServiceError(
            "validation_failed",
            "give --program CODE (there is no program)"
            if not rows
            else "give --program CODE (there are several programs)",
            field="program",
        )
    settings = await rt.program(int(rows[0].id))
    return int(rows[0].id), settings.timezone


async def do_import_receipts(
    rt: Runtime,
    path: Path,
    *,
    program: str | None = None,
    tz: str | None = None,
    default_store: str = DEFAULT_STORE,
    rejects: Path | None = None,
    batch_lines: int = BATCH_LINES,
    progress: Progress | None = None,
    plan: Plan | None = None,
) -> Summary:
    """Import the file into the program (the only one when ``program`` is None).

    ``tz``: the zone of times without an offset (default: the program's).  Raises
    ``ImportFileError`` for a file that cannot be imported at all and ``ServiceError``
    (naming the option) for a wrong program, zone or store code; a bad row never raises.
    """
    if not default_store.strip() or len(default_store) > LIMITS["store"]:
        raise ServiceError(
            "validation_failed",
            "the default store code must be 1 to 64 characters",
            field="default_store",
        )
    zone = None
    if tz is not None:
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ServiceError(
                "validation_failed", f"unknown time zone {tz!r} (e.g. Europe/Moscow)", field="tz"
            ) from None
    plan = plan or scan(path)
    program_id, program_tz = await _program(rt, program)
    importer = ReceiptImporter(
        rt,
        program_id=program_id,
        tz=zone or ZoneInfo(program_tz),
        store_timezone=tz or program_tz,
        default_store=default_store.strip(),
        batch_lines=batch_lines,
        progress=progress,
    )
    return await importer.run(plan, rejects or default_rejects(path))
