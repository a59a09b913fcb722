"""All tables, one MetaData, SQLAlchemy Core.

Hot tables (accounts, lots, holds, ledger entries, receipts) carry ``program_id`` and
``account_id`` and are indexed by them first, so that a distributed PostgreSQL (Citus)
can shard them by account later (ARCHITECTURE.md, scaling).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kopilka.store.types import Money, Quantity, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Foreign keys that PostgreSQL does not enforce (ADR 0036, migration 0033): those checked on
# every POS receipt.  PostgreSQL checks a foreign key by locking the referenced row FOR
# KEY SHARE; sixteen tills inserting rows that all name the same program, partner, store
# and account rows turn those locks into multixacts, ~22 us a check (8 us for a line's
# receipt), 0.25 ms of database CPU per receipt in all.  The services write these ids
# from rows they have just read or locked, and parents are never deleted; ``kopilka
# ledger verify`` looks for rows whose parent is missing.  SQLite keeps them (a check is
# an in-process index probe there).  The declarations below stay, as documentation and
# for SQLite.
PG_UNENFORCED_FOREIGN_KEYS: dict[str, tuple[str, str, str]] = {
    # name: (table, column, referenced table)
    "fk_receipts_program_id_programs": ("receipts", "program_id", "programs"),
    "fk_receipts_partner_id_partners": ("receipts", "partner_id", "partners"),
    "fk_receipts_store_id_stores": ("receipts", "store_id", "stores"),
    "fk_receipts_terminal_id_terminals": ("receipts", "terminal_id", "terminals"),
    "fk_receipt_lines_receipt_pk_receipts": ("receipt_lines", "receipt_pk", "receipts"),
    "fk_lots_program_id_programs": ("lots", "program_id", "programs"),
    "fk_lots_account_id_accounts": ("lots", "account_id", "accounts"),
    "fk_lots_funding_partner_id_partners": ("lots", "funding_partner_id", "partners"),
    "fk_holds_program_id_programs": ("holds", "program_id", "programs"),
    "fk_holds_account_id_accounts": ("holds", "account_id", "accounts"),
    "fk_ledger_entries_program_id_programs": ("ledger_entries", "program_id", "programs"),
    "fk_ledger_entries_account_id_accounts": ("ledger_entries", "account_id", "accounts"),
    "fk_ledger_entries_funding_partner_id_partners": (
        "ledger_entries",
        "funding_partner_id",
        "partners",
    ),
}


def include_object(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's ``include_object`` for ``dialect``: on PostgreSQL the schema comparison
    leaves out the foreign keys it does not enforce (``PG_UNENFORCED_FOREIGN_KEYS``)."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        return not (
            dialect == "postgresql"
            and type_ == "foreign_key_constraint"
            and name in PG_UNENFORCED_FOREIGN_KEYS
        )

    return include


# SQLite needs INTEGER (not BIGINT) for an auto-incrementing rowid primary key.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", Id, primary_key=True, autoincrement=True)


programs = Table(
    "programs",
    metadata,
    _id(),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False, server_default="RUB"),
    Column("settings", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
    # JSON of domain.program.ProgramProfile (points' name, language, SMS sender, branding);
    # NULL: the defaults.  Read with the version check, so the till pays nothing for it.
    Column("profile", Text),
)

# The customer cabinet's logo of a program (PNG, JPEG or WebP, checked on upload).
program_logos = Table(
    "program_logos",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("content_type", String(32), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

partners = Table(
    "partners",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    # Legal details printed on the settlement statement (issue 9, docs/coalition.md).
    Column("legal_name", String(300), nullable=False, server_default=""),
    Column("inn", String(12), nullable=False, server_default=""),
    Column("kpp", String(9), nullable=False, server_default=""),
    Column("ogrn", String(15), nullable=False, server_default=""),
    Column("legal_address", String(500), nullable=False, server_default=""),
    Column("bank_name", String(200), nullable=False, server_default=""),
    Column("bank_account", String(20), nullable=False, server_default=""),
    Column("bank_bik", String(9), nullable=False, server_default=""),
    Column("bank_corr_account", String(20), nullable=False, server_default=""),
    Column("contact_email", String(254), nullable=False, server_default=""),
    UniqueConstraint("program_id", "code"),
)

stores = Table(
    "stores",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("partner_id", ForeignKey("partners.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("address", String(300), nullable=False, server_default=""),
    Column("city", String(100), nullable=False, server_default=""),
    Column("region", String(100), nullable=False, server_default=""),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("timezone", String(64), nullable=False, server_default="Europe/Moscow"),
    UniqueConstraint("program_id", "code"),
)

terminals = Table(
    "terminals",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("store_id", ForeignKey("stores.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(12), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    Column("last_seen_at", UTCDateTime),  # flushed from memory every few seconds, not per call
)

customers = Table(
    "customers",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("first_name", String(100), nullable=False, server_default=""),
    Column("last_name", String(100), nullable=False, server_default=""),
    Column("middle_name", String(100), nullable=False, server_default=""),
    Column("phone", String(20)),
    Column("email", String(254)),
    Column("birthday", Date),
    Column("gender", String(1)),
    Column("consent_sms", Boolean, nullable=False, server_default="0"),
    Column("consent_email", Boolean, nullable=False, server_default="0"),
    Column("home_store_id", ForeignKey("stores.id")),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("phone_confirmed_at", UTCDateTime),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("tags", Text),  # JSON list of customer groups ("staff", "wholesale", ...)
    Column("rfm_segment", String(32)),
    Column("device_id", String(128)),  # the app's or POS's device fingerprint at registration
    Column("merged_into_id", ForeignKey("customers.id")),  # status "merged": who absorbed it
    # the id the chain's own systems know the customer by (imports, RFM/CLV reports)
    Column("external_id", String(64)),
    # where the member lives, as typed ("Подольск"); the territorial map geocodes it
    Column("city", String(100)),
    UniqueConstraint("program_id", "phone"),
    UniqueConstraint("program_id", "external_id"),
    Index(None, "program_id", "email"),
    Index(None, "program_id", "last_name", "first_name"),
)

accounts = Table(
    "accounts",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("customer_id", ForeignKey("customers.id"), nullable=False, unique=True),
    Column("balance", Money, nullable=False, server_default="0"),
    Column("held", Money, nullable=False, server_default="0"),
    Column("debt", Money, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Kept by the till (upgrade at once) and the tier job (downgrade at period end).
    Column("tier", String(64)),
    Column("tier_since", UTCDateTime),
    # The cumulative-discount level in hundredths of a percent, kept likewise.
    Column("discount_percent", Money),
    Index(None, "program_id", "id"),
)

cards = Table(
    "cards",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("number", String(32), nullable=False),
    Column("kind", String(16), nullable=False, server_default="plastic"),
    Column("qr_token", String(64)),
    Column("rfid_uid", String(64)),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("replaced_by_id", ForeignKey("cards.id")),
    Column("block_reason", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "number"),
    Index(None, "customer_id"),
)

# Every way to identify a customer (card number, phone, QR token, RFID UID) in one
# indexed table, so that a lookup is one index probe whatever the POS scanned.
identifiers = Table(
    "identifiers",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("value", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("card_id", ForeignKey("cards.id"), nullable=False),
)

lots = Table(
    "lots",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("amount", Money, nullable=False),
    Column("remaining", Money, nullable=False),
    Column("activates_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("receipt_pk", BigInteger),
    Column("funding_partner_id", ForeignKey("partners.id")),  # who issued the points
    Column("created_at", UTCDateTime, nullable=False),
    # NULL: burnable anywhere in the program; else only at this partner (ADR 0024)
    Column("burn_partner_id", BigInteger),
    Index(None, "program_id", "account_id", "id"),
    Index("ix_lots_expiring", "expires_at"),
)

holds = Table(
    "holds",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("receipt_pk", BigInteger),  # a receipt's hold, or
    Column("reward_order_id", BigInteger),  # a reward order's (issue 5)
    Column("amount", Money, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Index(None, "program_id", "account_id", "id"),
    Index(None, "receipt_pk"),
    Index("ix_holds_active_expiry", "state", "expires_at"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("account_id", ForeignKey("accounts.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", Money, nullable=False),
    Column("held_delta", Money, nullable=False, server_default="0"),
    Column("lot_id", BigInteger),
    Column("hold_id", BigInteger),
    Column("receipt_pk", BigInteger),
    Column("refund_pk", BigInteger),
    # who funds the movement: the funder of the lot it touches (ADR 0024); NULL: the program
    Column("funding_partner_id", ForeignKey("partners.id")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("note", String(200)),
    # where it happened: the receipt's (or event's) partner; NULL: the program (ADR 0024)
    Column("partner_id", BigInteger),
    Index(None, "program_id", "account_id", "id"),
    Index(None, "receipt_pk"),
)

# Named positions in the ledger (ADR 0024).  ``coalition_funders``: the last entry written
# before migration 0024; entries above it carry the funder of the lot they touch.
ledger_marks = Table(
    "ledger_marks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("entry_id", BigInteger, nullable=False),
)

receipts = Table(
    "receipts",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("partner_id", ForeignKey("partners.id"), nullable=False),
    Column("store_id", ForeignKey("stores.id"), nullable=False),
    Column("terminal_id", ForeignKey("terminals.id"), nullable=False),
    Column("pos_receipt_id", String(64), nullable=False),
    Column("account_id", BigInteger),
    Column("customer_id", BigInteger),
    Column("card_id", BigInteger),
    Column("state", String(16), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("cashier_id", String(64)),
    Column("amount", Money, nullable=False),
    Column("discount", Money, nullable=False),
    Column("points_redeemed", Money, nullable=False),
    Column("redeemed_value", Money, nullable=False),
    Column("to_pay", Money, nullable=False),
    Column("points_earned", Money, nullable=False),
    Column("hold_id", BigInteger),
    Column("earned_lot_id", BigInteger),
    Column("program_version", Integer, nullable=False, server_default="1"),
    Column("request_hash", String(64), nullable=False),
    Column("calc_response", LargeBinary),
    Column("confirm_response", LargeBinary),
    Column("source", String(16), nullable=False, server_default="pos"),
    UniqueConstraint("terminal_id", "pos_receipt_id"),
    Index("ix_receipts_store_id_pos_receipt_id", "store_id", "pos_receipt_id"),
    Index(None, "program_id", "account_id", "occurred_at"),
    Index(None, "program_id", "occurred_at"),
)

receipt_lines = Table(
    "receipt_lines",
    metadata,
    Column("receipt_pk", ForeignKey("receipts.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("program_id", BigInteger, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(300), nullable=False, server_default=""),
    Column("category", String(100)),
    Column("quantity", Quantity, nullable=False),
    Column("price", Money, nullable=False),
    Column("amount", Money, nullable=False),
    Column("discount", Money, nullable=False),
    Column("points_redeemed", Money, nullable=False),
    Column("redeemed_value", Money, nullable=False),
    Column("to_pay", Money, nullable=False),
    Column("points_earned", Money, nullable=False),
    Column("refunded_quantity", Quantity, nullable=False, server_default="0"),
)

refunds = Table(
    "refunds",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("receipt_pk", ForeignKey("receipts.id"), nullable=False),
    Column("pos_refund_id", String(64), nullable=False),
    Column("terminal_id", ForeignKey("terminals.id"), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("response", LargeBinary, nullable=False),
    Column("amount", Money, nullable=False),
    Column("points_taken_back", Money, nullable=False),
    Column("points_returned", Money, nullable=False),
    Column("points_uncollected", Money, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("receipt_pk", "pos_refund_id"),
)

refund_lines = Table(
    "refund_lines",
    metadata,
    Column("refund_pk", ForeignKey("refunds.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("quantity", Quantity, nullable=False),
    Column("amount", Money, nullable=False),
    Column("points_taken_back", Money, nullable=False),
    Column("points_returned", Money, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("topic", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    # pending -> dispatched (turned into deliveries) | dead (could not be turned)
    Column("state", String(16), nullable=False, server_default="pending"),
    # set by jobs that must announce a thing once (``points.expiring:<account>:<date>``)
    Column("dedup_key", String(128), unique=True),
    Index("ix_outbox_undelivered", "delivered_at", "id"),
    Index(None, "state", "id"),
)

# Partners' systems that receive the outbox's events, signed with HMAC (docs/notifications.md).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("partner_id", BigInteger),
    Column("url", String(500), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("topics", Text, nullable=False, server_default="*"),  # "*" or comma-separated
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    Index(None, "program_id"),
)

# One message on one channel to one recipient, made from an outbox row by the worker.
# state: pending -> sending (leased) -> delivered | pending (retry) | failed | dead.
deliveries = Table(
    "deliveries",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("outbox_id", ForeignKey("outbox.id"), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("channel", String(16), nullable=False),  # sms | email | webhook
    Column("recipient", String(500), nullable=False),
    Column("customer_id", BigInteger),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id")),
    Column("subject", String(300)),
    Column("body", Text, nullable=False),
    Column("delivery_key", String(128), nullable=False, unique=True),
    Column("state", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("locked_by", String(64)),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("sender", String(11)),  # the program's SMS sender name when the row was made
    Column("provider_ref", String(128)),
    Column("last_error", Text),
    Index(None, "state", "next_attempt_at"),
    Index(None, "outbox_id"),
    Index(None, "program_id", "created_at"),
)

# A program's own wording of a message; the package's defaults apply where none is set.
message_templates = Table(
    "message_templates",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("name", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("locale", String(5), nullable=False),
    Column("subject", String(300)),
    Column("body", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "name", "channel", "locale"),
)

# Campaigns (issue 7, docs/campaigns.md): a marketer's message to an audience, sent by the
# worker through the outbox; state: scheduled -> sending -> sent | cancelled.
campaigns = Table(
    "campaigns",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("name", String(200), nullable=False),
    Column("channel", String(16), nullable=False),  # sms | email
    Column("subject", String(300)),
    Column("body", Text, nullable=False),  # a sandboxed Jinja2 template
    Column("audience", Text, nullable=False),  # JSON: domain.campaigns.Audience
    Column("send_at", UTCDateTime, nullable=False),
    Column("timezone", String(64), nullable=False, server_default="Europe/Moscow"),
    Column("quiet_start", String(5)),  # "21:00": no sending from then ...
    Column("quiet_end", String(5)),  # ... until "09:00" local time
    Column("cap_count", Integer),  # at most cap_count marketing messages ...
    Column("cap_days", Integer),  # ... per customer in cap_days days, across campaigns
    Column("control_percent", Integer, nullable=False, server_default="0"),
    Column("response_days", Integer, nullable=False, server_default="14"),
    Column("state", String(16), nullable=False, server_default="scheduled"),
    Column("next_run_at", UTCDateTime, nullable=False),  # send_at, or the end of quiet hours
    Column("secret", String(64), nullable=False),  # signs the unsubscribe links
    Column("created_by", String(200), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Index(None, "program_id", "id"),
    Index(None, "state", "next_run_at"),
)

# Who of a campaign's audience got it (grp "target") or was held out ("control");
# state: queued -> sent | capped (frequency cap) | no_consent.
campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("campaign_id", ForeignKey("campaigns.id"), primary_key=True),
    Column("customer_id", BigInteger, primary_key=True),
    Column("program_id", BigInteger, nullable=False),
    Column("grp", String(8), nullable=False),
    Column("state", String(16), nullable=False, server_default="queued"),
    Column("outbox_id", BigInteger),
    Column("sent_at", UTCDateTime),
    Index(None, "program_id", "customer_id", "sent_at"),
    Index(None, "campaign_id", "state"),
)

phone_codes = Table(
    "phone_codes",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("used_at", UTCDateTime),
)

# --- the rules engine ------------------------------------------------------------------------

program_versions = Table(
    "program_versions",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Text, nullable=False),  # the program document, JSON
    Column("author", String(200), nullable=False),
    Column("note", String(500), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "version"),
)

# What a promotion with a budget has given so far (confirmed and reserved by calculated
# receipts); the conditional UPDATE on this row is what makes budgets exact.
promotion_budgets = Table(
    "promotion_budgets",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("promotion_id", String(64), primary_key=True),
    Column("spent_money", Money, nullable=False, server_default="0"),
    Column("spent_points", Money, nullable=False, server_default="0"),
)

# Receipts that used a promotion with per-customer limits, per customer and period
# ("day:2026-11-23", "week:2026-W48", "month:2026-11", "year:2026", "ever").
promotion_usage = Table(
    "promotion_usage",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("account_id", BigInteger, primary_key=True),
    Column("promotion_id", String(64), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("uses", Integer, nullable=False, server_default="0"),
)

# What each promotion gave on a receipt: the promotion-effect report's raw data, and what a
# cancel or an expired calculation gives back to budgets and limits.
receipt_promotions = Table(
    "receipt_promotions",
    metadata,
    Column("receipt_pk", ForeignKey("receipts.id"), primary_key=True),
    Column("promotion_id", String(64), primary_key=True),
    Column("program_id", BigInteger, nullable=False),
    Column("account_id", BigInteger),
    Column("discount", Money, nullable=False),
    Column("points", Money, nullable=False),
    Column("counted", Boolean, nullable=False, server_default="0"),  # in budgets/limits
    Column("periods", String(120)),  # the promotion_usage periods it counted in, comma-separated
    Column("tickets", Integer, nullable=False, server_default="0"),  # bonus draw tickets
)

personal_offers = Table(
    "personal_offers",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), primary_key=True),
    Column("promotion_id", String(64), primary_key=True),
    Column("valid_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
)

admin_tokens = Table(
    "admin_tokens",
    metadata,
    _id(),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False, server_default="owner"),
    Column("program_id", BigInteger),  # None: every program
    Column("partner_id", BigInteger),  # the partner role's scope (a partner's own system)
    Column("store_id", BigInteger),  # a store manager's or cashier's store
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(12), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
)

# --- coupons, gift cards, draws, activities, referrals, rewards (issue 5) --------------------

coupon_series = Table(
    "coupon_series",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code", String(64), nullable=False),  # what promotions name: when: {coupon: [CODE]}
    Column("name", String(200), nullable=False),
    Column("max_uses", Integer),  # per coupon; None: unlimited (multi-use)
    Column("bound", Boolean, nullable=False, server_default="0"),  # to a customer
    Column("valid_from", UTCDateTime),
    Column("valid_until", UTCDateTime),
    Column("return_on_refund", Boolean, nullable=False, server_default="1"),
    Column("points", Money),  # a "gift code from an SMS": points credited when redeemed
    Column("seed", String(64)),  # the random seed of a generated or sampled series
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "code"),
)

coupons = Table(
    "coupons",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("series_id", ForeignKey("coupon_series.id"), nullable=False),
    Column("code", String(64), nullable=False),  # normalised: upper case, no separators
    Column("customer_id", BigInteger),  # bound coupons
    Column("uses", Integer, nullable=False, server_default="0"),  # held + spent
    Column("status", String(16), nullable=False, server_default="active"),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "code"),
    Index(None, "series_id", "id"),  # a series' codes in order (console, exports)
    Index(None, "customer_id"),  # a customer's bound coupons (console, cabinet)
)

coupon_uses = Table(
    "coupon_uses",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("coupon_id", ForeignKey("coupons.id"), nullable=False),
    Column("receipt_pk", ForeignKey("receipts.id")),
    Column("account_id", BigInteger),
    Column("state", String(16), nullable=False),  # held | spent | released | returned | redeemed
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    UniqueConstraint("coupon_id", "receipt_pk"),
)

# Counters for rate limits and brute-force protection, per key and window.
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("window_start", UTCDateTime, primary_key=True),
    Column("count", Integer, nullable=False, server_default="0"),
)

gift_card_series = Table(
    "gift_card_series",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("nominal", Money, nullable=False),
    Column("valid_days", Integer),  # from activation; None: no expiry
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "code"),
)

gift_cards = Table(
    "gift_cards",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("series_id", ForeignKey("gift_card_series.id"), nullable=False),
    Column("number", String(32), nullable=False),
    Column("pin_hash", String(128), nullable=False),
    Column("nominal", Money, nullable=False),
    Column("balance", Money, nullable=False, server_default="0"),  # cached: from the entries
    Column("held", Money, nullable=False, server_default="0"),
    # issued | active | used | expired | blocked
    Column("state", String(16), nullable=False, server_default="issued"),
    Column("activated_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "number"),
    Index(None, "series_id", "id"),  # a series' cards in order (console, exports)
)

# Append-only, like the points ledger: the card's balance and held amount are sums of these.
gift_card_entries = Table(
    "gift_card_entries",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("card_id", ForeignKey("gift_cards.id"), nullable=False),
    # activate | hold | release | debit | refund | expire | block
    Column("kind", String(16), nullable=False),
    Column("amount", Money, nullable=False),  # change of the balance
    Column("held_delta", Money, nullable=False, server_default="0"),
    Column("receipt_pk", BigInteger),
    Column("refund_pk", BigInteger),
    Column("terminal_id", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "card_id", "id"),
    Index("ix_gift_card_entries_receipt_pk", "receipt_pk"),
)

draws = Table(
    "draws",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("rules", Text, nullable=False),  # JSON: tickets per purchase / per amount, prizes
    Column("seed_hash", String(64)),  # published before the period closes
    Column("seed", String(128)),  # revealed after the draw
    Column("state", String(16), nullable=False, server_default="open"),  # open|committed|drawn
    Column("result", Text),  # JSON: tickets list digest and winners
    Column("created_at", UTCDateTime, nullable=False),
    Column("drawn_at", UTCDateTime),
    UniqueConstraint("program_id", "code"),
)

draw_entries = Table(
    "draw_entries",
    metadata,
    Column("draw_id", ForeignKey("draws.id"), primary_key=True),
    Column("account_id", BigInteger, primary_key=True),
    Column("tickets", Integer, nullable=False),
)

draw_winners = Table(
    "draw_winners",
    metadata,
    Column("draw_id", ForeignKey("draws.id"), primary_key=True),
    Column("place", Integer, primary_key=True),
    Column("account_id", BigInteger, nullable=False),
    Column("prize", String(200), nullable=False),
    Column("points", Money),
)

# Points for more than purchases: each event once per idempotency key.
activity_events = Table(
    "activity_events",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("activity", String(64), nullable=False),  # welcome, card_registered, survey, ...
    Column("idempotency_key", String(128), nullable=False),
    Column("points", Money, nullable=False),
    Column("partner_id", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "idempotency_key"),
    Index(None, "program_id", "account_id", "activity", "created_at"),
)

referrals = Table(
    "referrals",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("referrer_customer_id", ForeignKey("customers.id"), nullable=False),
    Column("friend_customer_id", ForeignKey("customers.id"), nullable=False, unique=True),
    Column(
        "state", String(16), nullable=False, server_default="pending"
    ),  # pending|rewarded|rejected
    Column("reason", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
)

invite_codes = Table(
    "invite_codes",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("code", String(32), primary_key=True),
    Column("customer_id", ForeignKey("customers.id"), nullable=False, unique=True),
)

rewards = Table(
    "rewards",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("price_points", Money, nullable=False),
    Column("stock", Integer),  # None: unlimited
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "code"),
)

reward_orders = Table(
    "reward_orders",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("reward_id", ForeignKey("rewards.id"), nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("points", Money, nullable=False),
    Column("state", String(16), nullable=False),  # ordered | issued | cancelled
    Column("hold_id", BigInteger),
    Column("idempotency_key", String(128)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    UniqueConstraint("program_id", "idempotency_key"),
)

# --- the console: people, their sessions, the audit log (issue 6) ---------------------------

admin_users = Table(
    "admin_users",
    metadata,
    _id(),
    Column("login", String(64), nullable=False, unique=True),  # lower case
    Column("name", String(200), nullable=False),
    Column("email", String(254)),
    Column("password_hash", String(200), nullable=False),  # argon2id, PHC string
    Column("role", String(32), nullable=False),
    Column("program_id", BigInteger),  # None: every program
    Column("partner_id", BigInteger),  # the partner role's scope
    Column("store_id", BigInteger),  # the store manager's and cashier's store
    Column("locale", String(5), nullable=False, server_default="ru"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UTCDateTime),
    Column("last_login_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
)

# The programs a console user may switch between besides ``admin_users.program_id``
# (issue 9: "an admin user may be granted several").  No row and no program: every program.
admin_user_programs = Table(
    "admin_user_programs",
    metadata,
    Column("user_id", ForeignKey("admin_users.id"), primary_key=True),
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
)

admin_sessions = Table(
    "admin_sessions",
    metadata,
    _id(),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the cookie
    Column("user_id", ForeignKey("admin_users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("program_id", BigInteger),  # the program the console shows
    Column("ip", String(64)),
    Column("user_agent", String(300)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Index(None, "user_id"),
)

# The customer cabinet's sessions (issue 7): a member's, never mixed with the console's.
member_sessions = Table(
    "member_sessions",
    metadata,
    _id(),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the cookie
    Column("program_id", BigInteger, nullable=False),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("ip", String(64)),
    Column("user_agent", String(300)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Index(None, "customer_id"),
)

# Every manual change, by whom (a console user, an admin token, the CLI), with the state
# before and after as JSON.  Written in the transaction of the change itself.
audit_log = Table(
    "audit_log",
    metadata,
    _id(),
    Column("at", UTCDateTime, nullable=False),
    Column("actor_kind", String(16), nullable=False),  # user | token | cli | system
    Column("actor_id", BigInteger),
    Column("actor_name", String(200), nullable=False),
    Column("ip", String(64)),
    Column("program_id", BigInteger),
    Column("partner_id", BigInteger),
    Column("action", String(64), nullable=False),  # card.block, points.adjust, user.create …
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(64), nullable=False),
    Column("reason", String(500)),
    Column("before", Text),
    Column("after", Text),
    Index(None, "at"),
    Index(None, "object_type", "object_id"),
    Index(None, "actor_kind", "actor_id"),
)

# --- imported history (issue 8) ---------------------------------------------------------------

# Receipts brought by ``kopilka import receipts``, by the old system's receipt id: the key
# that makes a re-run of the same file change nothing (ADR 0014).  The receipt itself is an
# ordinary ``receipts`` row with ``source = 'import'``.
imported_receipts = Table(
    "imported_receipts",
    metadata,
    Column("program_id", ForeignKey("programs.id"), primary_key=True),
    Column("receipt_id", String(64), primary_key=True),
    Column("receipt_pk", ForeignKey("receipts.id"), nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
)

# --- the report builder: saved and scheduled reports (issue 8, docs/analytics/builder.md) ----

# A report definition (JSON: domain.report_builder.Definition) saved by its owner and
# shared with roles; partner_id/store_id: the owner's scope, which its schedules keep.
saved_reports = Table(
    "saved_reports",
    metadata,
    _id(),
    Column("program_id", ForeignKey("programs.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("definition", Text, nullable=False),
    Column("shared_roles", String(300), nullable=False, server_default=""),  # comma-separated
    Column("owner_kind", String(16), nullable=False),  # user | token | cli
    Column("owner_id", BigInteger),
    Column("owner_name", String(200), nullable=False),
    Column("partner_id", BigInteger),
    Column("store_id", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "program_id", "id"),
)

# A saved report e-mailed as XLSX or PDF daily, weekly or monthly at a local time; the
# worker sends a due run once (the outbox's dedup_key "report:<schedule>:<run time>").
report_schedules = Table(
    "report_schedules",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("report_id", ForeignKey("saved_reports.id"), nullable=False),
    Column("frequency", String(16), nullable=False),  # daily | weekly | monthly
    Column("at_time", String(5), nullable=False),  # "08:00" local
    Column("weekday", Integer),  # weekly: 1 = Monday ... 7
    Column("day", Integer),  # monthly: 1..28
    Column("timezone", String(64), nullable=False),
    Column("recipients", Text, nullable=False),  # comma-separated e-mail addresses
    Column("format", String(8), nullable=False),  # xlsx | pdf
    Column("locale", String(5), nullable=False, server_default="ru"),
    Column("next_run_at", UTCDateTime, nullable=False),
    Column("last_run_at", UTCDateTime),
    Column("created_by", String(200), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "next_run_at"),
    Index(None, "report_id"),
)

# One file an outbox event's e-mails carry (a scheduled report's XLSX or PDF).
outbox_attachments = Table(
    "outbox_attachments",
    metadata,
    Column("outbox_id", ForeignKey("outbox.id"), primary_key=True),
    Column("filename", String(200), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# --- fraud alerts (issue 8, docs/fraud.md) ------------------------------------------------------

# One alert per situation (``dedup_key``); ``open_key`` is the dedup key while the alert is
# open or assigned and NULL once it is closed, so the unique index allows one open alert
# per situation and any number of closed ones.
fraud_alerts = Table(
    "fraud_alerts",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("rule", String(32), nullable=False),
    Column("severity", String(8), nullable=False),  # low | medium | high
    # card | customer | terminal | cashier | user | device | gift_card
    Column("subject_type", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("subject_label", String(200), nullable=False),
    Column("store_id", BigInteger),
    Column("customer_id", BigInteger),
    Column("card_number", String(32)),  # the card the officer may block from the alert
    Column("summary", String(300), nullable=False),
    Column("evidence", Text, nullable=False),  # JSON list of items, each with a unique "key"
    Column("dedup_key", String(200), nullable=False),
    Column("open_key", String(200)),
    Column("state", String(16), nullable=False, server_default="open"),
    Column("assignee_id", BigInteger),
    Column("assignee_name", String(200)),
    Column("resolution", String(500)),
    Column("resolved_by", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    UniqueConstraint("program_id", "open_key"),
    Index(None, "program_id", "state", "id"),
    Index(None, "program_id", "dedup_key"),
)

# A program's thresholds (domain.fraud.FraudSettings as JSON); no row: the defaults.
fraud_settings = Table(
    "fraud_settings",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("settings", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False, server_default=""),
)

# How far the fraud scan has read each source (receipts, refunds, adjustments, cards,
# customers), per program: the time of the last row seen.
fraud_watermarks = Table(
    "fraud_watermarks",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("source", String(32), primary_key=True),
    Column("seen_until", UTCDateTime, nullable=False),
)

# The scan reads new refunds, cards and customers by time: these make those reads an
# index range instead of a scan of the program's rows.
Index("ix_refunds_program_id_created_at", refunds.c.program_id, refunds.c.created_at)
Index("ix_cards_program_id_created_at", cards.c.program_id, cards.c.created_at)
Index("ix_customers_program_id_registered_at", customers.c.program_id, customers.c.registered_at)

# --- analytics summary tables (issue 8), kept up to date by the worker ----------------------
# Facts by the program's local day, re-aggregated whole for every day touched since the
# watermark (docs/decisions/0017-analytics-summary-tables.md).  They are derived data:
# ``kopilka report rebuild-summary`` makes them again from receipts, refunds and the ledger.

# Confirmed receipts by the local day of the sale (occurred_at), refunds by the local day of
# the refund, per store, cashier ('' when the till sent none) and member flag.
sales_daily = Table(
    "sales_daily",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("store_id", BigInteger, primary_key=True),
    Column("cashier_id", String(64), primary_key=True),
    Column("member", Boolean, primary_key=True),
    Column("receipts", Integer, nullable=False, server_default="0"),
    Column("lines", Integer, nullable=False, server_default="0"),
    Column("quantity", Quantity, nullable=False, server_default="0"),
    Column("amount", Money, nullable=False, server_default="0"),  # before discounts
    Column("discount", Money, nullable=False, server_default="0"),
    Column("redeemed_value", Money, nullable=False, server_default="0"),  # paid by points
    Column("to_pay", Money, nullable=False, server_default="0"),  # paid in money
    Column("points_earned", Money, nullable=False, server_default="0"),  # receipts' own
    Column("refunds", Integer, nullable=False, server_default="0"),
    Column("refund_amount", Money, nullable=False, server_default="0"),
    Column("refund_points", Money, nullable=False, server_default="0"),  # earned, taken back
)

# Ledger movements by the local day of the entry, per store of the receipt (0: none, e.g.
# expiry, welcome points, manual adjustments) and kind; ``refund`` is split by sign into
# ``refund_out`` (earned points taken back) and ``refund_in`` (burned points returned).
points_daily = Table(
    "points_daily",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("store_id", BigInteger, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("entries", Integer, nullable=False, server_default="0"),
    Column("amount", Money, nullable=False, server_default="0"),
)

# Who bought where on which local day (members' confirmed receipts): members in a period
# (distinct customers) and cohorts by month of the first purchase.
customer_days = Table(
    "customer_days",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("customer_id", BigInteger, primary_key=True),
    Column("store_id", BigInteger, primary_key=True),
    Column("month", Date, nullable=False),  # the first day of ``day``'s month
    Column("receipts", Integer, nullable=False, server_default="0"),
    Column("to_pay", Money, nullable=False, server_default="0"),
    Index(None, "program_id", "customer_id", "month"),
)

# Where each incremental job has got to: rows changed at or after ``mark - overlap`` are
# looked at again on the next run.
analytics_watermarks = Table(
    "analytics_watermarks",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("mark", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# What the job looks at: rows changed since the watermark.
Index("ix_receipts_confirmed_at", receipts.c.confirmed_at)
Index("ix_receipts_created_at", receipts.c.created_at)
Index("ix_refunds_created_at", refunds.c.created_at)
Index("ix_ledger_entries_created_at", ledger_entries.c.created_at)

# --- analytics (issue 8) ---------------------------------------------------------------------

# Association rules of a program's receipts (docs/analytics/basket.md), replaced whole by
# ``kopilka report basket --save`` and the worker's daily refresh; the cashier screen
# suggests the consequents of the rules whose antecedents are in the basket.
basket_rules = Table(
    "basket_rules",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("rank", Integer, primary_key=True),  # 1 = highest lift
    Column("antecedents", String(1000), nullable=False),  # SKUs, ascending, space-separated
    Column("consequents", String(1000), nullable=False),
    Column("support", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("lift", Float, nullable=False),
    Column("consequent_names", Text, nullable=False, server_default=""),  # JSON: sku -> name
    Column("params", String(200), nullable=False),  # "min_support=0.01 min_confidence=..."
    Column("receipts", Integer, nullable=False),  # how many receipts the rules came from
    Column("computed_at", UTCDateTime, nullable=False),
)

# --- offline burn (issue 10, ADR 0030) -------------------------------------------------------

# A program's Ed25519 signing keys; ``id`` is the key id written into every token.  The
# newest key not retired signs; a retired key is still published to tills until the
# last token it signed has expired (``retired_at`` + the token lifetime).
offline_keys = Table(
    "offline_keys",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("public_key", String(64), nullable=False),  # base64url of the 32 raw bytes
    Column("private_key", String(64), nullable=False),  # base64url of the 32 raw bytes
    Column("created_at", UTCDateTime, nullable=False),
    Column("retired_at", UTCDateTime),
    Column("valid_until", UTCDateTime),  # set at retirement: no token it signed lives longer
    Index(None, "program_id", "id"),
)

# Tokens issued to members (cabinet, app): what a new token's cap must leave room for.
offline_tokens = Table(
    "offline_tokens",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("token_id", String(24), nullable=False),
    Column("key_id", BigInteger, nullable=False),
    Column("cap", Money, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("token", Text, nullable=False),
    Column("channel", String(16), nullable=False),  # cabinet | app
    UniqueConstraint("program_id", "token_id"),
    Index(None, "program_id", "account_id", "expires_at"),
)

# Every burn a till made under a token, applied once: ``use_no`` 1 is the token's first
# receipt (the unique key makes the token single-use as an authorisation); a later use is
# a reuse, applied only within what is left of the cap, and reported.
offline_burns = Table(
    "offline_burns",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("token_id", String(24), nullable=False),
    Column("use_no", Integer, nullable=False),
    Column("receipt_pk", BigInteger, nullable=False, unique=True),
    Column("terminal_id", BigInteger, nullable=False),
    Column("points", Money, nullable=False),
    Column("debt", Money, nullable=False),  # the part no lot covered: the account's debt
    Column("cap", Money, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("program_id", "token_id", "use_no"),
    Index(None, "program_id", "created_at"),
)

# --- coalition settlement (issue 9, docs/coalition.md, ADR 0025) ----------------------------

# A program's settlement terms: roubles per point (NULL: the program's point_value) and the
# operator's fee in percent of each obligation, as decimal text.  No row: the defaults.
# They apply to every open period; closing a period copies them into it.
settlement_terms = Table(
    "settlement_terms",
    metadata,
    Column("program_id", BigInteger, primary_key=True),
    Column("rate", String(24)),
    Column("fee_percent", String(24), nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False, server_default=""),
)

# A closed month ('YYYY-MM', the program's time zone): its terms and figures (JSON of
# services.settlement.Clearing) frozen at close; the unique key makes two closes one.
settlement_periods = Table(
    "settlement_periods",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("period", String(7), nullable=False),
    Column("state", String(16), nullable=False),  # closed
    Column("rate", String(24), nullable=False),
    Column("fee_percent", String(24), nullable=False),
    Column("figures", Text, nullable=False),
    Column("figures_sha256", String(64), nullable=False),
    Column("closed_at", UTCDateTime, nullable=False),
    Column("closed_by", String(200), nullable=False),
    UniqueConstraint("program_id", "period"),
)

# Each partner's signed PDF statement of a closed period (partner_id 0: the operator's),
# made once at close, so the file a partner downloads later is the one signed then.
settlement_statements = Table(
    "settlement_statements",
    metadata,
    Column("period_id", BigInteger, ForeignKey("settlement_periods.id"), primary_key=True),
    Column("partner_id", BigInteger, primary_key=True),
    Column("pdf", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# The installation's key and self-signed certificate that sign statements (the newest row
# signs); made by ``kopilka settlement keygen`` or on first use.
signing_keys = Table(
    "signing_keys",
    metadata,
    _id(),
    Column("subject", String(300), nullable=False),
    Column("key_pem", Text, nullable=False),
    Column("cert_pem", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the certificate (DER)
    Column("created_at", UTCDateTime, nullable=False),
)

# Every grant and withdrawal of a consent (issue 10, migration 0029): channel sms | email |
# pd (processing of personal data), the version and SHA-256 of the text shown, the source
# till | cabinet | admin | import.  Appended only; customers.consent_* hold the current state.
consents = Table(
    "consents",
    metadata,
    _id(),
    Column("program_id", BigInteger, nullable=False),
    Column("customer_id", ForeignKey("customers.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("text_version", String(32), nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("actor", String(200), nullable=False, server_default=""),
    CheckConstraint("channel IN ('sms', 'email', 'pd')", name="channel"),
    CheckConstraint("source IN ('till', 'cabinet', 'admin', 'import')", name="source"),
    Index(None, "customer_id", "id"),
)
