"""A polite HTTP client for one forge: one request at a time, spaced, backing off.

GitHub allows about 80 content-creating requests a minute and 500 an hour for
one account; GitLab and Gitea have their own limits. So every request to a
forge goes through one client that holds a lock (one request at a time), keeps
a minimum interval between requests, honours ``Retry-After`` and the
rate-limit headers (``x-ratelimit-remaining``/``-reset`` on GitHub,
``RateLimit-Remaining``/``-Reset`` on GitLab), and retries 5xx answers with
exponential back-off. A wait longer than a short one is handed back to the
worker as :class:`ForgeUnavailable` instead of blocking it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Mapping

import httpx

from . import ForgeError, ForgeUnavailable

log = logging.getLogger("wenzheng.bridge.forge")

RETRYABLE = {500, 502, 503, 504}


class ForgeClient:
    def __init__(self, base_url: str, auth: Mapping[str, str] | Callable[[], Mapping[str, str]],
                 min_interval: float, max_backoff: float, *, max_inline_wait: float = 5.0,
                 attempts: int = 4, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, stop_event: threading.Event | None = None,
                 transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self.min_interval = min_interval
        self.max_backoff = max_backoff
        self.max_inline_wait = max_inline_wait
        self.attempts = attempts
        self._wall = wall
        self._mono = monotonic
        self._stop = stop_event or threading.Event()
        self._lock = threading.Lock()
        self._next_at = 0.0  # monotonic time before which no request is sent
        self._http = httpx.Client(timeout=httpx.Timeout(20.0, connect=5.0), transport=transport,
                                  headers={"User-Agent": "wenzheng-bridge"})
        self.requests_sent = 0

    def close(self) -> None:
        self._http.close()

    def _wait_until(self, at: float) -> None:
        delay = at - self._mono()
        if delay > 0:
            self._stop.wait(delay)

    def _rate_limit_wait(self, resp: httpx.Response) -> float | None:
        """Return how long the forge asks us to wait before the next request, if it does."""
        h = resp.headers
        retry_after = h.get("retry-after")
        if retry_after:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                try:
                    from email.utils import parsedate_to_datetime
                    return max(0.0, parsedate_to_datetime(retry_after).timestamp() - self._wall())
                except (TypeError, ValueError):
                    return 60.0
        remaining = h.get("x-ratelimit-remaining", h.get("ratelimit-remaining"))
        reset = h.get("x-ratelimit-reset", h.get("ratelimit-reset"))
        if remaining is not None and remaining.strip() == "0" and reset:
            try:
                return max(0.0, float(reset) - self._wall()) + 1.0
            except ValueError:
                return 60.0
        return None

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
                expect: tuple[int, ...] = (200, 201, 204)) -> httpx.Response:
        """Send one request and return the response when its status is in
        ``expect``; raise :class:`ForgeUnavailable` or :class:`ForgeError` otherwise."""
        backoff = 0.25
        last = ""
        for attempt in range(self.attempts):
            with self._lock:
                self._wait_until(self._next_at)
                if self._stop.is_set():
                    raise ForgeUnavailable("the bridge is stopping", 1.0)
                headers = self._auth() if callable(self._auth) else self._auth
                try:
                    resp = self._http.request(method, self.base_url + path, json=json, params=params,
                                              headers=headers)
                    self.requests_sent += 1
                except httpx.HTTPError as exc:
                    resp = None
                    last = f"{type(exc).__name__}"
                self._next_at = self._mono() + self.min_interval
                wait = self._rate_limit_wait(resp) if resp is not None else None
                if wait is not None:
                    # Even a successful answer may say the budget is spent: honour it.
                    self._next_at = max(self._next_at, self._mono() + wait)
            if resp is not None and resp.status_code in expect:
                return resp
            limited = resp is not None and (resp.status_code == 429 or
                                            (resp.status_code == 403 and wait is not None))
            if limited:
                last = f"{method} {path}: {resp.status_code} rate limited"
                wait = wait if wait is not None else 60.0
                if wait > self.max_inline_wait:
                    raise ForgeUnavailable(last, min(wait, self.max_backoff))
                continue  # the lock-held _next_at already makes the next try wait
            if resp is None or resp.status_code in RETRYABLE:
                last = last if resp is None else f"{method} {path}: {resp.status_code}"
                log.info("forge request failed, backing off", extra={"fields": {
                    "attempt": attempt + 1, "error": last}})
                if backoff > self.max_inline_wait:
                    break
                with self._lock:
                    self._next_at = max(self._next_at, self._mono() + backoff)
                backoff *= 2
                continue
            raise ForgeError(f"{method} {path}: {resp.status_code} {_message(resp)}", resp.status_code)
        raise ForgeUnavailable(last or f"{method} {path} failed", min(self.max_backoff, max(backoff, 2.0)))


def _message(resp: httpx.Response) -> str:
    """Return the forge's own error message, shortened, for the operator's log."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)[:200]
    return str(data)[:200]


def is_already_exists(resp_error: ForgeError) -> bool:
    return "already exist" in str(resp_error).lower()
