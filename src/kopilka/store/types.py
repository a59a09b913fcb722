"""Column types that keep money exact and time zone-aware on both SQLite and PostgreSQL.

Money and points are stored as BIGINT minor units (kopecks, hundredths of a point);
quantities as BIGINT thousandths.  Python sees ``Decimal``.  Integers are exact and fast
on both engines, where SQLite's NUMERIC would quietly become a float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from kopilka.domain.money import KOPECK, MILLI, from_minor, to_minor


class Money(TypeDecorator[Decimal]):
    """Roubles or points with two decimals, stored as an integer count of hundredths."""

    impl = BigInteger
    cache_ok = True
    unit = KOPECK

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_minor(Decimal(value), unit=self.unit)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_minor(int(value), unit=self.unit)


class Quantity(Money):
    """Quantities with three decimals (weight goods), stored as thousandths."""

    cache_ok = True
    unit = MILLI


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on both engines (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
