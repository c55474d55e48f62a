"""One retry policy for every HTTP call to Sitoo and the ERP (tenacity, as HttpHook uses).

Transient: 429 (wait ``Retry-After`` when the server says, bounded), 5xx, connection errors and
timeouts. Everything else is permanent and raised at once, with the server's own message kept.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests
import tenacity

log = logging.getLogger(__name__)
T = TypeVar("T")


class ApiError(Exception):
    """A failed call to an external API; ``transient`` says whether a retry could help."""

    transient = False

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class TransientApiError(ApiError):
    transient = True


class AuthError(ApiError):
    """The credentials were refused. Never retried; the message never contains them."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 60.0

    def wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            # At least what the server asked for, plus up to 50 % jitter: workers throttled together
            # (an account concurrency limit below the pool) must not all come back in the same instant.
            after = min(max(exc.retry_after, 0.0), self.max_retry_after)
            return after + random.uniform(0, after / 2)
        backoff = min(self.max_wait, self.initial_wait * 2 ** (state.attempt_number - 1))
        return random.uniform(backoff / 2, backoff)


def parse_retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


# The connection broke or stalled: the request may or may not have been applied, so only
# idempotent calls (GET, PUT eid:, SuiteQL) are made with this policy.
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiError):
        return exc.transient
    return isinstance(exc, _NETWORK_ERRORS)


def with_retries(fn: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """Call ``fn`` until it succeeds, a permanent error occurs, or the attempts run out.

    On exhaustion the last error is re-raised with ``what`` and the attempt count in the message.
    """

    def _log(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: attempt %d failed (%s); retrying", what, state.attempt_number, exc)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=policy.wait,
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=_log,
        reraise=True,
    )
    try:
        return retrying(fn)
    except ApiError as exc:
        if exc.transient:
            raise type(exc)(
                f"{what} failed after {policy.attempts} attempts: {exc}", exc.status, exc.retry_after
            ) from exc
        raise
    except _NETWORK_ERRORS as exc:
        raise TransientApiError(f"{what} failed after {policy.attempts} attempts: {exc!r}") from exc
