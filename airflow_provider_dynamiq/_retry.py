"""The one retry policy of every request the provider sends.

* Retried: HTTP 429, 502, 503 and 504, and transport errors (connect errors, timeouts, resets).
* Never retried: any other status, so 400, 401, 403 and 404 fail at once.
* Requests that are not idempotent (creating a run) are retried only when they cannot have
  reached the server: a connect error, a connect timeout or a pool timeout.
* Waits grow exponentially from ``backoff_base`` up to ``backoff_max`` with jitter, so that many
  tasks failing together do not retry together.
* A ``Retry-After`` header (seconds, or an HTTP date) replaces the computed wait. When it
  requests more than ``max_retry_after`` seconds, the request fails at once instead.

The sync and async clients both ask :meth:`RetryPolicy.decide`; only the sleeping differs.
"""

from __future__ import annotations

import random
import ssl
import time
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime

import httpx

RETRYABLE_STATUS_CODES = frozenset({429, 502, 503, 504})

# Transport errors raised before the request bytes left the client.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryDecision:
    """Decision after a failed attempt: retry after ``wait`` seconds, or give up with ``reason``."""

    retry: bool
    wait: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry limits and waits, all in seconds.

    :param max_retries: retries after the first attempt; 0 turns retrying off.
    :param backoff_base: wait before the first retry, before jitter.
    :param backoff_max: cap of the computed wait.
    :param max_retry_after: longest ``Retry-After`` the client waits for.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, retry_number: int) -> float:
        """Return the wait before retry number ``retry_number`` (1-based), with jitter."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (retry_number - 1))
        # Half fixed, half random: the wait still grows, and concurrent clients spread out.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def decide(
        self,
        attempt: int,
        *,
        idempotent: bool,
        response: httpx.Response | None = None,
        error: Exception | None = None,
        now: float | None = None,
    ) -> RetryDecision:
        """Decide whether attempt number ``attempt`` (1-based), which failed, is retried.

        Pass either the error ``response`` or the transport ``error``.
        """
        if error is not None:
            if not isinstance(error, httpx.TransportError):
                return RetryDecision(False, reason=f"{type(error).__name__} is not retryable")
            if is_tls_error(error):
                # A certificate or protocol mismatch fails the same way on every attempt.
                return RetryDecision(False, reason="the TLS handshake failed, which a retry does not fix")
            if not idempotent and not isinstance(error, _NOT_SENT_ERRORS):
                return RetryDecision(
                    False, reason="the request may have reached the server and is not safe to repeat"
                )
        elif response is not None:
            if response.status_code not in RETRYABLE_STATUS_CODES:
                return RetryDecision(False, reason=f"HTTP {response.status_code} is not retryable")
            if not idempotent:
                return RetryDecision(
                    False, reason="the request reached the server and is not safe to repeat"
                )
        else:
            raise ValueError("decide() needs a response or an error")

        if attempt > self.max_retries:
            return RetryDecision(False, reason=f"gave up after {attempt} attempts")

        wait = self.backoff(attempt)
        if response is not None:
            requested = parse_retry_after(response.headers.get("Retry-After"), now=now)
            if requested is not None:
                if requested > self.max_retry_after:
                    return RetryDecision(
                        False,
                        reason=(
                            f"the server asked to retry after {requested:.0f} s, longer than the "
                            f"{self.max_retry_after:.0f} s this client waits"
                        ),
                    )
                wait = requested
        return RetryDecision(True, wait=wait)


def is_tls_error(error: BaseException) -> bool:
    """Return whether ``error`` was caused by a failed TLS handshake (an ``ssl.SSLError`` in its chain)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the wait a ``Retry-After`` header requests, in seconds, or ``None`` when absent or invalid.

    :param value: delay-seconds (``"120"``) or an HTTP date (``"Wed, 21 Oct 2026 07:28:00 GMT"``).
    :param now: the current Unix time, for tests; defaults to the clock.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        current = time.time() if now is None else now
        seconds = moment.timestamp() - current
        return max(seconds, 0.0)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds

