"""RetryPolicy waits: Retry-After is a floor, with jitter so throttled workers do not retry in lockstep."""

from __future__ import annotations

from types import SimpleNamespace

from include.sitoo_erp.http_retry import RetryPolicy, TransientApiError


def _state(exc: Exception, attempt: int = 1):
    return SimpleNamespace(outcome=SimpleNamespace(exception=lambda: exc), attempt_number=attempt)


def test_retry_after_is_honoured_as_a_floor_and_jittered():
    policy = RetryPolicy(max_retry_after=60)
    waits = [policy.wait(_state(TransientApiError("429", 429, retry_after=1.0))) for _ in range(200)]
    assert all(1.0 <= w <= 1.5 for w in waits)
    assert len({round(w, 3) for w in waits}) > 50  # not all the same instant


def test_retry_after_is_bounded():
    policy = RetryPolicy(max_retry_after=2)
    assert all(
        2.0 <= policy.wait(_state(TransientApiError("429", 429, retry_after=300))) <= 3.0 for _ in range(50)
    )


def test_without_retry_after_exponential_backoff():
    policy = RetryPolicy(initial_wait=0.5, max_wait=30)
    assert 2.0 <= policy.wait(_state(TransientApiError("503", 503), attempt=4)) <= 4.0
