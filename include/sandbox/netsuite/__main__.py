"""Run the NetSuite emulator as its own process.

    python -m include.sandbox.netsuite --port 18081 --seed 42 --stores 5 [--skus 400]
        [--concurrency 5] [--latency-ms 0] [--jitter-ms 0] [--error-rate 0] [--timeout-after-commit-rate 0]
        [--closed-period 2025-01 ...] [--client-id ...] [--certificate-id ...]

Initial ERP on-hand equals the Sitoo generator's ``initial_on_hand(store, sku)`` when the generator is
importable, else ``default_on_hand``.
"""

from __future__ import annotations

import argparse
import threading
import time

from include.sandbox.catalogue import build_catalogue
from include.sandbox.netsuite.app import NetSuiteFaults, NetSuiteSandbox
from include.sandbox.netsuite.store import on_hand_from_store_sku


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m include.sandbox.netsuite", description=__doc__.splitlines()[0]
    )
    p.add_argument("--port", type=int, default=18081)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--stores", type=int, default=5)
    p.add_argument("--skus", type=int, default=400)
    p.add_argument("--account-id", default="1234567_SB1")
    p.add_argument("--client-id", default="sandbox-client-id")
    p.add_argument("--certificate-id", default="sandbox-cert-id")
    p.add_argument("--concurrency", type=int, default=5, help="account-wide concurrency limit (0 = none)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--timeout-after-commit-rate", type=float, default=0.0)
    p.add_argument("--closed-period", action="append", default=[], help="YYYY-MM (repeatable)")
    args = p.parse_args(argv)

    started = time.monotonic()
    catalogue = build_catalogue(seed=args.seed, stores=args.stores, skus=args.skus)
    master = catalogue.erp_master_data()
    on_hand = None
    try:
        from include.sandbox.generator import generate_dataset

        dataset = generate_dataset(seed=args.seed, days=1, receipts_per_store_day=1, catalogue=catalogue)
        on_hand = on_hand_from_store_sku(dataset.initial_on_hand, master)
    except Exception as exc:  # generator absent or changed: fall back to the default figures
        print(f"note: Sitoo generator not used for on-hand ({exc!r}); using default_on_hand")
    faults = NetSuiteFaults(
        concurrency_limit=args.concurrency,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        timeout_after_commit_rate=args.timeout_after_commit_rate,
        closed_periods=args.closed_period,
        seed=args.seed,
    )
    ns = NetSuiteSandbox(
        master,
        account_id=args.account_id,
        client_id=args.client_id,
        certificate_id=args.certificate_id,
        on_hand=on_hand,
        faults=faults,
    )
    ns.start(port=args.port)
    print(
        f"NetSuite sandbox {ns.url} account={args.account_id} client_id={args.client_id} "
        f"certificate_id={args.certificate_id} locations={len(master['locations'])} items={len(master['items'])} "
        f"stock seeded in {ns.seed_seconds:.2f}s, ready in {time.monotonic() - started:.2f}s",
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        ns.stop()


if __name__ == "__main__":
    main()
