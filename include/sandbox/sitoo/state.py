"""Sitoo sandbox state: the dataset, a settable clock, scheduled changes, faults and counters.

``SitooSandbox`` is the Python control surface (tests and the demo); ``include.sandbox.sitoo.app``
exposes the same controls over HTTP under ``/_sandbox/...``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from include.sandbox.generator import SitooDataset
from include.sandbox.server import ServerThread

DEFAULT_ACCOUNT_ID = 90316
DEFAULT_API_ID = "90316-1"
DEFAULT_PASSWORD = "sandbox-not-a-secret"  # noqa: S105 - a published sandbox credential, not a secret
MAX_NUM = 1000  # larger ``num`` answers 400 (the real maximum is unconfirmed)
MAX_ZREPORTS = 500


@dataclass
class SitooFaults:
    """Switchable faults. ``rate_limit_rps=None`` disables the token bucket."""

    rate_limit_rps: float | None = None
    rate_limit_burst: int = 10
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0  # share of requests answered with a random 500/502/503
    hang_rate: float = 0.0  # share of requests that sleep ``hang_seconds`` (beyond the client timeout)
    hang_seconds: float = 30.0
    seed: int = 0

    def update(self, **changes: Any) -> None:
        names = {f.name for f in fields(self)}
        for k, v in changes.items():
            if k not in names:
                raise ValueError(f"unknown fault setting {k!r}")
            setattr(self, k, v)


@dataclass
class _Bucket:
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)


class SitooSandbox:
    """A Sitoo REST v2 emulator over a ``SitooDataset``.

    >>> sb = SitooSandbox(generate_dataset(seed=42, receipts_per_store_day=2))
    >>> with sb:  # or sb.start(); ...; sb.stop()
    ...     requests.get(f"{sb.base_url}/orders.json", auth=(sb.api_id, sb.password))
    """

    def __init__(
        self,
        dataset: SitooDataset,
        account_id: int = DEFAULT_ACCOUNT_ID,
        api_id: str = DEFAULT_API_ID,
        password: str = DEFAULT_PASSWORD,
        faults: SitooFaults | None = None,
        now: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.account_id = int(account_id)
        self.api_id = api_id
        self.password = password
        self.faults = faults or SitooFaults()
        self.lock = threading.RLock()
        self._now = int(now) if now is not None else dataset.end_ts + 3600
        self._scheduled: list[tuple[int, int, dict]] = []
        self._fail_next: list[int] = []
        self._bucket = _Bucket(tokens=float(self.faults.rate_limit_burst))
        self._rng = random.Random(self.faults.seed)
        self.counters: Counter[str] = Counter()
        self._server: ServerThread | None = None
        self._app = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def app(self):
        if self._app is None:
            from include.sandbox.sitoo.app import create_app

            self._app = create_app(self)
        return self._app

    def start(self, port: int = 0) -> str:
        self._server = ServerThread(self.app, port=port).start()
        return self._server.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> SitooSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return self._server.url

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2/accounts/{self.account_id}"

    # ------------------------------------------------------------------ clock and changes
    @property
    def now(self) -> int:
        return self._now

    def set_clock(self, now: int) -> int:
        """Move the sandbox clock (Unix seconds); applies changes scheduled up to ``now``."""
        with self.lock:
            self._now = int(now)
            self._apply_due()
            return self._now

    def advance(self, seconds: int) -> int:
        return self.set_clock(self._now + int(seconds))

    def update_order(self, orderid: int, at: int | None = None, **changes: Any) -> dict | None:
        """Apply ``changes`` to an order now, or when the clock reaches ``at`` (if in the future)."""
        with self.lock:
            if at is not None and at > self._now:
                self._scheduled.append((int(at), int(orderid), changes))
                self._scheduled.sort(key=lambda s: s[0])
                return None
            return self.dataset.update_order(orderid, at=at if at is not None else self._now, **changes)

    def add_order(self, **kwargs: Any) -> int:
        """``SitooDataset.add_order`` under the lock (see there); returns the new orderid."""
        with self.lock:
            return self.dataset.add_order(**kwargs)

    def _apply_due(self) -> None:
        while self._scheduled and self._scheduled[0][0] <= self._now:
            at, orderid, changes = self._scheduled.pop(0)
            self.dataset.update_order(orderid, at=at, **changes)
            self.counters["scheduled_changes_applied"] += 1

    # ------------------------------------------------------------------ Z-reports
    def z_reports(self) -> list[dict]:
        """The Z-reports Sitoo would hold: each store's own business days (cached per dataset version)."""
        with self.lock:
            return self.dataset.z_reports()

    # ------------------------------------------------------------------ faults
    def set_faults(self, **changes: Any) -> SitooFaults:
        with self.lock:
            self.faults.update(**changes)
            if "seed" in changes:
                self._rng = random.Random(self.faults.seed)
            if "rate_limit_burst" in changes or "rate_limit_rps" in changes:
                self._bucket = _Bucket(tokens=float(self.faults.rate_limit_burst))
            return self.faults

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        """Answer the next ``count`` API requests with ``status`` (deterministic, for tests)."""
        with self.lock:
            self._fail_next.extend([int(status)] * int(count))

    def reset_counters(self) -> None:
        with self.lock:
            self.counters.clear()

    def decide_fault(self) -> tuple[str, Any] | None:
        """Called once per API request: ('fail', status) | ('429', retry_after) | ('error', status) |
        ('hang', seconds) | None. Latency is separate (``latency_seconds``)."""
        with self.lock:
            if self._fail_next:
                status = self._fail_next.pop(0)
                self.counters["failed_next"] += 1
                return ("fail", status)
            f = self.faults
            if f.rate_limit_rps:
                b = self._bucket
                t = time.monotonic()
                b.tokens = min(float(f.rate_limit_burst), b.tokens + (t - b.stamp) * f.rate_limit_rps)
                b.stamp = t
                if b.tokens < 1.0:
                    self.counters["rate_limited"] += 1
                    return ("429", max(1, math.ceil((1.0 - b.tokens) / f.rate_limit_rps)))
                b.tokens -= 1.0
            if f.error_rate and self._rng.random() < f.error_rate:
                self.counters["injected_5xx"] += 1
                return ("error", self._rng.choice((500, 502, 503)))
            if f.hang_rate and self._rng.random() < f.hang_rate:
                self.counters["hangs"] += 1
                return ("hang", f.hang_seconds)
            return None

    def latency_seconds(self) -> float:
        f = self.faults
        if not f.latency_ms and not f.latency_jitter_ms:
            return 0.0
        with self.lock:
            jitter = self._rng.uniform(0, f.latency_jitter_ms) if f.latency_jitter_ms else 0.0
        return (f.latency_ms + jitter) / 1000.0

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                "now": self._now,
                "faults": asdict(self.faults),
                "fail_next": len(self._fail_next),
                "scheduled": [{"at": a, "orderid": o, "changes": c} for a, o, c in self._scheduled],
                "counters": dict(self.counters),
                "orders": len(self.dataset),
                "visible_orders": self.dataset.visible_count(self._now),
                "max_orderid": self.dataset.max_orderid,
            }
