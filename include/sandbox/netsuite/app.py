"""NetSuite REST emulator: FastAPI app, limits/fault middleware and the ``NetSuiteSandbox`` facade.

Endpoints (under ``/services/rest``): M2M token, record upsert/read for cashSale, cashRefund,
creditMemo, inventoryAdjustment and journalEntry, SuiteQL (the general ledger is
``transactionaccountingline``, as in NetSuite; ``GET /_sandbox/ledger`` sums it per account). Control surface under ``/_sandbox`` (no auth).
See ``include/sandbox/netsuite/__init__.py`` for the public API summary.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from typing import Any

import anyio
import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from include.sandbox.netsuite import errors as E
from include.sandbox.netsuite import suiteql
from include.sandbox.netsuite.errors import NetSuiteError, error_body
from include.sandbox.netsuite.store import RECORD_TYPES, OnHand, Store, default_on_hand
from include.sandbox.server import ServerThread

API_PREFIX = "/services/rest"
TOKEN_PATH = f"{API_PREFIX}/auth/oauth2/v1/token"
RECORD_PREFIX = f"{API_PREFIX}/record/v1"
SUITEQL_PATH = f"{API_PREFIX}/query/v1/suiteql"
ALLOWED_ALGS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class NetSuiteFaults:
    """Limits and fault knobs; all can be changed at runtime (``set_faults`` / ``POST /_sandbox/faults``)."""

    concurrency_limit: int = 5  # account-wide in-flight requests; 0 = unlimited
    latency_ms: float = 0.0  # added to every API request while it holds a concurrency slot
    jitter_ms: float = 0.0  # + uniform(0, jitter_ms)
    error_rate: float = 0.0  # share of API requests answered with a random 5xx (no side effect)
    timeout_after_commit_rate: float = 0.0  # share of upserts stored but never answered
    timeout_mode: str = "drop"  # "drop": close the connection mid-response; "sleep": hang for sleep_s
    timeout_sleep_s: float = 30.0  # "sleep" mode: how long to hang (cut short by stop/reset)
    closed_periods: list[str] = field(default_factory=list)  # "YYYY-MM" -> 400 PERIOD_CLOSED
    fail_next: int = 0  # the next N API requests get 503
    timeout_next_upserts: int = 0  # the next N upserts commit, then time out
    seed: int = 0  # seeds the random faults and jitter


class _Drop(Exception):
    """Raised after a partial response so uvicorn closes the connection (timeout after commit)."""


def _not_a_drop(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], _Drop))


logging.getLogger("uvicorn.error").addFilter(_not_a_drop)


@dataclass
class _Counters:
    requests: int = 0
    api_requests: int = 0
    token_requests: int = 0
    throttled_429: int = 0
    faults_injected: int = 0
    timeouts_after_commit: int = 0
    created: int = 0
    updated: int = 0
    rejected_400: int = 0
    unauthorized_401: int = 0
    max_in_flight: int = 0


class NetSuiteSandbox:
    """An emulated NetSuite account on 127.0.0.1.

    ``master``: ``Catalogue.erp_master_data()``-shaped dict. ``on_hand``: initial stock per
    (item id, location id) — a callable returning a quantity (or None: no row), a dict, or None
    for ``default_on_hand``.
    """

    def __init__(
        self,
        master: dict[str, list[dict]],
        account_id: str = "1234567_SB1",
        client_id: str = "sandbox-client-id",
        certificate_id: str = "sandbox-cert-id",
        on_hand: OnHand = None,
        faults: NetSuiteFaults | None = None,
        token_lifetime_s: int = 3600,
        public_key: str | bytes | None = None,
    ) -> None:
        self.account_id = account_id
        self.client_id = client_id
        self.certificate_id = certificate_id
        self.public_key = public_key
        self.token_lifetime_s = token_lifetime_s
        self._initial_faults = faults or NetSuiteFaults()
        self.faults = NetSuiteFaults(**asdict(self._initial_faults))
        self._on_hand = on_hand if on_hand is not None else default_on_hand
        self.store = Store(master, self._on_hand, self.faults.closed_periods)
        suiteql.register_functions(self.store.conn)
        self._rng = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._counters = _Counters()
        self._docs_by_type: Counter[str] = Counter()
        self._in_flight = 0
        self._shutdown = threading.Event()
        self._open = threading.Event()  # cleared by holding(): admitted requests wait
        self._open.set()
        self._server: ServerThread | None = None
        self.app = _LimitsMiddleware(self, self._build_app())

    # ------------------------------------------------------------------ lifecycle
    def start(self, port: int = 0) -> NetSuiteSandbox:
        self._shutdown.clear()
        self._server = ServerThread(self.app, port=port).start()
        return self

    def stop(self) -> None:
        self._shutdown.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> NetSuiteSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return self._server.url

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    @property
    def seed_seconds(self) -> float:
        """Seconds the initial ``inventoryitemlocations`` seeding took."""
        return self.store.seed_seconds

    # ------------------------------------------------------------------ control
    def set_faults(self, **changes: Any) -> NetSuiteFaults:
        names = {f.name for f in fields(NetSuiteFaults)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        with self._lock:
            for k, v in changes.items():
                setattr(self.faults, k, v)
            if "seed" in changes:
                self._rng = random.Random(self.faults.seed)
            self.store.closed_periods = set(self.faults.closed_periods)
        return self.faults

    def fail_next(self, n: int) -> None:
        self.set_faults(fail_next=n)

    def timeout_next_upserts(self, n: int) -> None:
        self.set_faults(timeout_next_upserts=n)

    def set_token_lifetime(self, seconds: int) -> None:
        self.token_lifetime_s = seconds

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def counters(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = asdict(self._counters)
            out["in_flight"] = self._in_flight
        rows = self.store.query('SELECT recordtype, COUNT(*) FROM "transaction" GROUP BY recordtype')
        out["documents"] = dict.fromkeys(RECORD_TYPES, 0) | {r[0]: r[1] for r in rows}
        return out

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Admitted requests keep their concurrency slot until the block ends, so a test can fill
        the account's slots and see the next request throttled without relying on a clock."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def reset_counters(self) -> None:
        with self._lock:
            self._counters = _Counters()

    def reset(self) -> None:
        """Forget documents and tokens, re-seed stock, restore the initial faults, zero the counters."""
        self._shutdown.set()  # releases requests hanging in "sleep" mode
        self.store.clear_transactions()
        self.store.seed_stock(self._on_hand)
        with self._lock:
            self.faults = NetSuiteFaults(**asdict(self._initial_faults))
            self._rng = random.Random(self.faults.seed)
            self.store.closed_periods = set(self.faults.closed_periods)
            self.store.inactive_accounts.clear()
            self._tokens.clear()
            self._counters = _Counters()
        self._shutdown.clear()

    def documents(self, type: str | None = None) -> list[dict[str, Any]]:
        return self.store.documents(type)

    def set_account_active(self, account_id: str, active: bool) -> None:
        """A finance user (in)activates a GL account: NetSuite then refuses new postings to it."""
        with self._lock:
            (self.store.inactive_accounts.discard if active else self.store.inactive_accounts.add)(
                str(account_id)
            )

    def edit_line_quantity(self, internal_id: str, line: int, quantity: Decimal) -> None:
        """A finance user edits a posted document's item line quantity in the UI, keeping its amount
        (``Store.edit_line_quantity``): only the quantity (and so the rate and stock) differs."""
        self.store.edit_line_quantity(internal_id, line, quantity)

    def count_documents_by_external_id(self) -> dict[str, int]:
        """externalId -> number of stored documents (always 1 if upserts are idempotent)."""
        rows = self.store.query('SELECT externalid, COUNT(*) FROM "transaction" GROUP BY externalid')
        return {r[0]: r[1] for r in rows}

    def on_hand(self, item_id: str, location_id: str) -> float:
        return self.store.on_hand(item_id, location_id)

    def ledger(self, externalid_like: str = "%") -> dict[str, dict[str, Any]]:
        """Posted balance per account (sandbox-only view of ``transactionaccountingline``)."""
        return self.store.ledger(externalid_like)

    def issue_token(self) -> str:
        """A valid bearer token without the JWT dance (for tests of other layers)."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.time() + self.token_lifetime_s
        return token

    # ------------------------------------------------------------------ internals
    def _bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self._counters, name, getattr(self._counters, name) + n)

    def _check_bearer(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or expiry <= time.time():
            self._bump("unauthorized_401")
            reason = "missing" if not auth else ("expired" if expiry is not None else "invalid")
            raise NetSuiteError(
                401,
                E.INVALID_LOGIN,
                f"Invalid login attempt. For more details, see the Login Audit Trail ({reason} "
                "bearer token).",
            )

    def _validate_assertion(self, assertion: str, request: Request) -> None:
        def fail(msg: str) -> NetSuiteError:
            return NetSuiteError(401, "invalid_client", msg)

        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            raise fail(f"client_assertion is not a JWT: {exc}") from exc
        if header.get("alg") not in ALLOWED_ALGS:
            raise fail(f"JWT alg {header.get('alg')!r} not allowed; use one of {', '.join(ALLOWED_ALGS)}")
        if header.get("kid") != self.certificate_id:
            raise fail("JWT kid does not match the certificate id of an active M2M mapping")
        try:
            if self.public_key is not None:
                claims = jwt.decode(
                    assertion,
                    self.public_key,
                    algorithms=list(ALLOWED_ALGS),
                    options={"verify_aud": False, "verify_exp": False},
                )
            else:
                claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise fail(f"JWT rejected: {exc}") from exc
        if claims.get("iss") != self.client_id:
            raise fail("JWT iss is not the client id of the integration record")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        expected = {str(request.url).split("?")[0].rstrip("/")}
        if self._server is not None:
            expected.add(self.token_url)
        if not any(isinstance(a, str) and a.rstrip("/") in expected for a in auds):
            raise fail(f"JWT aud must be the token URL {sorted(expected)[0]}")
        scope = claims.get("scope")
        scopes = scope if isinstance(scope, list) else str(scope or "").replace(",", " ").split()
        if "rest_webservices" not in scopes:
            raise fail("JWT scope must contain rest_webservices")
        try:
            iat, exp = int(claims["iat"]), int(claims["exp"])
        except (KeyError, TypeError, ValueError) as exc:
            raise fail("JWT must carry numeric iat and exp") from exc
        now = time.time()
        if exp - iat > 3600:
            raise fail("JWT exp - iat must not exceed 3600 seconds")
        if exp <= now:
            raise fail("JWT has expired")
        if iat > now + 300:
            raise fail("JWT iat is in the future")

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="NetSuite sandbox", docs_url=None, redoc_url=None, openapi_url=None)
        ns = self

        @app.exception_handler(NetSuiteError)
        async def _ns_error(request: Request, exc: NetSuiteError) -> JSONResponse:
            if exc.status == 400:
                ns._bump("rejected_400")
            if exc.code in ("invalid_client", "invalid_request", "unsupported_grant_type"):
                return JSONResponse(
                    {"error": exc.code, "error_description": exc.detail}, status_code=exc.status
                )
            return JSONResponse(exc.body(), status_code=exc.status)

        @app.post(TOKEN_PATH)
        async def token(request: Request) -> JSONResponse:
            ns._bump("token_requests")
            form = await request.form()
            if form.get("grant_type") != "client_credentials":
                raise NetSuiteError(400, "unsupported_grant_type", "grant_type must be client_credentials")
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise NetSuiteError(400, "invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
            assertion = form.get("client_assertion")
            if not isinstance(assertion, str) or not assertion:
                raise NetSuiteError(400, "invalid_request", "client_assertion is required")
            ns._validate_assertion(assertion, request)
            return JSONResponse(
                {
                    "access_token": ns.issue_token(),
                    "token_type": "bearer",
                    "expires_in": int(ns.token_lifetime_s),
                }
            )

        def record_url(request: Request, record_type: str, internal_id: str) -> str:
            return str(request.base_url).rstrip("/") + f"{RECORD_PREFIX}/{record_type}/{internal_id}"

        def check_type(record_type: str) -> None:
            if record_type not in RECORD_TYPES:
                raise NetSuiteError(
                    404, E.NONEXISTENT_ID, f"Record type '{record_type}' does not exist or is not supported."
                )

        @app.put(RECORD_PREFIX + "/{record_type}/{key}")
        async def upsert(record_type: str, key: str, request: Request) -> Response:
            ns._check_bearer(request)
            check_type(record_type)
            if not key.startswith("eid:"):
                raise NetSuiteError(405, E.USER_ERROR, "PUT is only supported with an external id (eid:...).")
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError as exc:
                raise NetSuiteError(400, E.USER_ERROR, f"Invalid JSON body: {exc}") from exc
            prepared = ns.store.prepare(record_type, key[4:], body)
            internal_id, created = await anyio.to_thread.run_sync(ns.store.upsert, prepared)
            ns._bump("created" if created else "updated")
            if ns._take_commit_timeout():
                request.scope.setdefault("state", {})["ns_timeout_after_commit"] = True
            return Response(
                status_code=204, headers={"Location": record_url(request, record_type, internal_id)}
            )

        @app.get(RECORD_PREFIX + "/{record_type}/{key}")
        async def get_record(record_type: str, key: str, request: Request) -> JSONResponse:
            ns._check_bearer(request)
            check_type(record_type)
            if key.startswith("eid:"):
                rec = ns.store.get_record(record_type, external_id=key[4:])
            else:
                rec = ns.store.get_record(record_type, internal_id=key)
            if rec is None:
                raise NetSuiteError(
                    404,
                    E.NONEXISTENT_ID,
                    "The record instance does not exist. Provide a valid record instance ID.",
                )
            self_url = record_url(request, record_type, rec["id"])
            return JSONResponse(
                {
                    "links": [{"rel": "self", "href": self_url}],
                    "id": rec.pop("id"),
                    "externalId": rec.pop("externalId"),
                    **rec,
                }
            )

        @app.post(SUITEQL_PATH)
        async def query(request: Request, limit: int = 1000, offset: int = 0) -> JSONResponse:
            ns._check_bearer(request)
            if request.headers.get("prefer", "").lower() != "transient":
                raise NetSuiteError(
                    400,
                    E.INVALID_PARAMETER,
                    "Invalid header: SuiteQL requests need 'Prefer: transient'.",
                    "Prefer",
                )
            if not 1 <= limit <= suiteql.MAX_LIMIT or offset < 0:
                raise NetSuiteError(
                    400,
                    E.INVALID_PARAMETER,
                    f"limit must be 1..{suiteql.MAX_LIMIT} and offset >= 0.",
                    "limit",
                )
            try:
                payload = json.loads(await request.body() or b"{}")
            except ValueError as exc:
                raise NetSuiteError(400, E.USER_ERROR, f"Invalid JSON body: {exc}") from exc
            q = payload.get("q") if isinstance(payload, dict) else None

            def run() -> dict[str, Any]:
                with ns.store.lock:
                    return suiteql.run(ns.store.conn, q, limit, offset)

            result = await anyio.to_thread.run_sync(run)
            base = str(request.base_url).rstrip("/") + SUITEQL_PATH
            links = [{"rel": "self", "href": f"{base}?limit={limit}&offset={offset}"}]
            if result["hasMore"]:
                links.append({"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}"})
            return JSONResponse({"links": links, **result})

        @app.get("/_sandbox/counters")
        async def get_counters() -> dict[str, Any]:
            return ns.counters()

        @app.get("/_sandbox/faults")
        async def get_faults() -> dict[str, Any]:
            return asdict(ns.faults)

        @app.post("/_sandbox/faults")
        async def post_faults(request: Request) -> JSONResponse:
            try:
                faults = ns.set_faults(**(await request.json()))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(asdict(faults))

        @app.get("/_sandbox/documents")
        async def get_documents(type: str | None = None) -> list[dict[str, Any]]:
            return ns.documents(type)

        @app.get("/_sandbox/documents/by-external-id")
        async def get_counts() -> dict[str, int]:
            return ns.count_documents_by_external_id()

        @app.post("/_sandbox/reset")
        async def post_reset() -> Response:
            await anyio.to_thread.run_sync(ns.reset)
            return Response(status_code=204)

        @app.post("/_sandbox/reset-counters")
        async def post_reset_counters() -> Response:
            ns.reset_counters()
            return Response(status_code=204)

        @app.post("/_sandbox/expire-tokens")
        async def post_expire() -> Response:
            ns.expire_tokens()
            return Response(status_code=204)

        @app.get("/_sandbox/ledger")
        async def get_ledger(externalid_like: str = "%") -> dict[str, Any]:
            return ns.ledger(externalid_like)

        @app.get("/_sandbox/on-hand")
        async def get_on_hand(item: str, location: str) -> dict[str, Any]:
            return {"item": item, "location": location, "quantityonhand": ns.on_hand(item, location)}

        return app

    def _take_commit_timeout(self) -> bool:
        with self._lock:
            if self.faults.timeout_next_upserts > 0:
                self.faults.timeout_next_upserts -= 1
                hit = True
            else:
                hit = self.faults.timeout_after_commit_rate > 0 and (
                    self._rng.random() < self.faults.timeout_after_commit_rate
                )
            if hit:
                self._counters.timeouts_after_commit += 1
                self._counters.faults_injected += 1
        return hit

    def _admit(self) -> tuple[str, float]:
        """Take a concurrency slot or report why not: ('429', 0), an injected fault ('503' | '500' |
        '502', latency) or ('ok', latency)."""
        with self._lock:
            f = self.faults
            self._counters.api_requests += 1
            if f.concurrency_limit and self._in_flight >= f.concurrency_limit:
                self._counters.throttled_429 += 1
                return ("429", 0.0)
            self._in_flight += 1
            self._counters.max_in_flight = max(self._counters.max_in_flight, self._in_flight)
            delay = (f.latency_ms + (self._rng.uniform(0, f.jitter_ms) if f.jitter_ms else 0.0)) / 1000
            if f.fail_next > 0:
                f.fail_next -= 1
                self._counters.faults_injected += 1
                return ("503", delay)
            if f.error_rate and self._rng.random() < f.error_rate:
                self._counters.faults_injected += 1
                return (self._rng.choice(("500", "502", "503")), delay)
            return ("ok", delay)

    def _release(self) -> None:
        with self._lock:
            self._in_flight -= 1


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class _LimitsMiddleware:
    """Pure ASGI wrapper: counts requests, enforces the concurrency limit, adds latency, injects faults.

    Applies to ``/services/rest/*`` except the token endpoint. A request holds its slot for the whole
    latency + handler time, so ``concurrency_limit / latency`` is the throughput ceiling.
    """

    def __init__(self, ns: NetSuiteSandbox, app: FastAPI) -> None:
        self.ns = ns
        self.inner = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        ns = self.ns
        ns._bump("requests")
        path = scope.get("path", "")
        if not path.startswith(API_PREFIX) or path == TOKEN_PATH:
            await self.inner(scope, receive, send)
            return
        verdict, delay = ns._admit()
        if verdict == "429":
            await _send_json(
                send,
                429,
                error_body(
                    429,
                    E.CONCURRENCY_LIMIT_EXCEEDED,
                    "Request blocked: the account's concurrency limit is exceeded. Retry later.",
                ),
                [(b"retry-after", b"1")],
            )
            return
        released = False
        try:
            if delay:
                await asyncio.sleep(delay)
            while not ns._open.is_set() and not ns._shutdown.is_set():
                await asyncio.sleep(0.01)
            if verdict != "ok":
                status = int(verdict)
                code = E.SERVICE_UNAVAILABLE if status == 503 else E.UNEXPECTED_ERROR
                await _send_json(send, status, error_body(status, code, "Injected fault (sandbox)."))
                return
            state = scope.setdefault("state", {})
            held: list[MutableMapping[str, Any]] = []

            async def capture(message: MutableMapping[str, Any]) -> None:
                if state.get("ns_timeout_after_commit"):
                    held.append(message)
                else:
                    await send(message)

            await self.inner(scope, receive, capture)
            if state.get("ns_timeout_after_commit"):
                ns._release()
                released = True
                if ns.faults.timeout_mode == "sleep":
                    deadline = time.monotonic() + ns.faults.timeout_sleep_s
                    while time.monotonic() < deadline and not ns._shutdown.is_set():
                        await asyncio.sleep(0.05)
                    await _send_json(
                        send, 504, error_body(504, E.UNEXPECTED_ERROR, "Gateway timeout (sandbox).")
                    )
                    return
                # "drop": promise a body, send none, and fail -> uvicorn closes the connection.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
                    }
                )
                await send({"type": "http.response.body", "body": b"{", "more_body": True})
                raise _Drop("timeout after commit (sandbox): connection dropped on purpose")
        finally:
            if not released:
                ns._release()
