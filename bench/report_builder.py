"""Time a few report builder definitions on a database (best of 3, one query each).

kopilka --db sqlite:///demo.db demo --no-serve
python bench/report_builder.py sqlite:///demo.db [PROGRAM_ID]
"""

from __future__ import annotations

import asyncio
import sys
import time

from kopilka.services import saved_reports
from kopilka.services.audit import CLI
from kopilka.services.runtime import Runtime

DEFINITIONS = {
    "city: sales, receipts, 30 days": {
        "dimensions": ["city"],
        "measures": ["sales", "receipts"],
        "period": {"relative": "last_30_days"},
    },
    "city: 5 receipt measures, 30 days": {
        "dimensions": ["city"],
        "measures": ["sales", "receipts", "avg_receipt", "items", "members"],
        "period": {"relative": "last_30_days"},
    },
    "day x city: sales, 365 days": {
        "dimensions": ["day", "city"],
        "measures": ["sales"],
        "period": {"relative": "last_365_days"},
    },
    "category: sales, receipts, items, 365 days (lines)": {
        "dimensions": ["category"],
        "measures": ["sales", "receipts", "items"],
        "period": {"relative": "last_365_days"},
    },
    "month x tier: sales, members, 365 days": {
        "dimensions": ["month", "tier"],
        "measures": ["sales", "members"],
        "period": {"relative": "last_365_days"},
    },
}


async def main(url: str, program_id: int) -> None:
    rt = Runtime.from_url(url)
    try:
        for name, data in DEFINITIONS.items():
            d = saved_reports.parse_definition(data)
            best = float("inf")
            rows = 0
            for _ in range(3):
                t0 = time.perf_counter()
                res = await saved_reports.run_definition(rt, CLI, program_id, d)
                best = min(best, time.perf_counter() - t0)
                rows = len(res.rows)
            print(f"{name}: {best * 1000:.0f} ms, {rows} rows")
    finally:
        await rt.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1))
