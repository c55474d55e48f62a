"""Run the Sitoo sandbox in the foreground.

python -m include.sandbox.sitoo --port 18080 --seed 42 --stores 5 --days 7
python -m include.sandbox.sitoo --port 18080 --published   # Sitoo's own API examples, as published
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import uvicorn

from include.sandbox.generator import generate_dataset
from include.sandbox.server import LOOPBACK
from include.sandbox.sitoo.state import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_ID,
    DEFAULT_PASSWORD,
    SitooFaults,
    SitooSandbox,
)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m include.sandbox.sitoo", description=__doc__)
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--stores", type=int, default=5)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--receipts", type=int, default=40, help="receipts per store and day")
    ap.add_argument("--skus", type=int, default=400)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 16))
    ap.add_argument("--timezone", default="Europe/London")
    ap.add_argument("--account-id", type=int, default=DEFAULT_ACCOUNT_ID)
    ap.add_argument("--api-id", default=DEFAULT_API_ID)
    ap.add_argument("--password", default=DEFAULT_PASSWORD)
    ap.add_argument("--now", type=int, default=None, help="sandbox clock (Unix s); default: all arrived")
    ap.add_argument("--rate-limit-rps", type=float, default=None)
    ap.add_argument("--rate-limit-burst", type=int, default=10)
    ap.add_argument("--latency-ms", type=float, default=0.0)
    ap.add_argument("--latency-jitter-ms", type=float, default=0.0)
    ap.add_argument("--error-rate", type=float, default=0.0)
    ap.add_argument("--hang-rate", type=float, default=0.0)
    ap.add_argument(
        "--published", action="store_true", help="serve Sitoo's published API examples (tests/fixtures/sitoo)"
    )
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    if args.published:
        from include.sandbox.sitoo.published import PublishedSitooSandbox

        pub = PublishedSitooSandbox(account_id=args.account_id, api_id=args.api_id, password=args.password)
        print(f"published examples: {len(pub.examples)} orders; clock={pub.now}")
        print(
            f"base url: http://{LOOPBACK}:{args.port}/v2/accounts/{args.account_id}  (API id {args.api_id})"
        )
        uvicorn.run(pub.app, host=LOOPBACK, port=args.port, log_level="info", lifespan="off")
        return
    ds = generate_dataset(
        seed=args.seed,
        stores=args.stores,
        days=args.days,
        receipts_per_store_day=args.receipts,
        start=args.start,
        timezone=args.timezone,
        skus=args.skus,
    )
    faults = SitooFaults(
        rate_limit_rps=args.rate_limit_rps,
        rate_limit_burst=args.rate_limit_burst,
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.latency_jitter_ms,
        error_rate=args.error_rate,
        hang_rate=args.hang_rate,
        seed=args.seed,
    )
    sb = SitooSandbox(
        ds,
        account_id=args.account_id,
        api_id=args.api_id,
        password=args.password,
        faults=faults,
        now=args.now,
    )
    print(f"{len(ds)} orders generated in {time.monotonic() - t0:.2f}s; clock={sb.now}")
    print(f"base url: http://{LOOPBACK}:{args.port}/v2/accounts/{args.account_id}  (API id {args.api_id})")
    uvicorn.run(sb.app, host=LOOPBACK, port=args.port, log_level="info", lifespan="off")


if __name__ == "__main__":
    main()
