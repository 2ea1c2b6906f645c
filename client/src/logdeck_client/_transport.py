"""One request to Logdeck, sync or async: the bearer key, timeouts, retries of idempotent calls
with backoff, and the API's error shape raised as `LogdeckError`."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx

from logdeck_client.errors import LogdeckError

T = TypeVar("T")

# Statuses worth another try of an idempotent call: too many requests, service unavailable.
RETRY_STATUSES = frozenset({429, 503})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Small requests and answers go out at once: without TCP_NODELAY, a request written in two
# parts (headers, body) waits for the server's delayed acknowledgement, 40 ms on Linux.
SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request and how to read its answer. `idempotent` calls are retried; others never,
    since a lost answer may hide a write that happened."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    json: Any = None
    idempotent: bool = False
    missing_ok: bool = False  # a 404 answers None instead of raising


@dataclass
class RetryPolicy:
    """How often and how long to wait: exponential backoff with jitter, capped, and the
    server's `Retry-After` when it gives one."""

    attempts: int = 4
    backoff: float = 0.25
    max_backoff: float = 8.0
    statuses: frozenset[int] = field(default_factory=lambda: RETRY_STATUSES)

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.isdigit():
                return min(float(retry_after), self.max_backoff)
        base = min(self.backoff * (2**attempt), self.max_backoff)
        return base / 2 + random.uniform(0, base / 2)


def _settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    url = base_url or os.environ.get("LOGDECK_URL")
    key = api_key or os.environ.get("LOGDECK_API_KEY")
    if not url:
        raise LogdeckError(0, "configuration", "No base_url given and LOGDECK_URL is not set.")
    if not key:
        raise LogdeckError(0, "configuration", "No api_key given and LOGDECK_API_KEY is not set.")
    url = url.rstrip("/")
    if not url.endswith("/api/v1"):
        url = f"{url}/api/v1"
    return url, key


def _clean(params: dict[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _error(response: httpx.Response) -> LogdeckError:
    try:
        body = response.json()
        error = body["error"]
        return LogdeckError(
            response.status_code,
            str(error.get("code", "error")),
            str(error.get("message", "")),
            list(error.get("fields") or []),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        text = response.text[:500]
        return LogdeckError(response.status_code, "http_error", text or response.reason_phrase)


def _result(call: Call[T], response: httpx.Response) -> T | None:
    if call.missing_ok and response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise _error(response)
    return call.parse(response.json() if response.content else None)


class SyncTransport:
    """Requests over one `httpx.Client` (its connection pool is reused by every call)."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        http_client: httpx.Client | None,
    ) -> None:
        url, key = _settings(base_url, api_key)
        self.retry = retry
        self.own_client = http_client is None
        self.client = http_client or httpx.Client(
            timeout=timeout or DEFAULT_TIMEOUT,
            transport=httpx.HTTPTransport(socket_options=SOCKET_OPTIONS),
        )
        self.base_url = url
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}

    def run(self, call: Call[T]) -> T:
        attempts = self.retry.attempts if call.idempotent else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.client.request(
                    call.method,
                    self.base_url + call.path,
                    params=_clean(call.params),
                    json=call.json,
                    headers=self.headers,
                )
            except httpx.TransportError as exc:
                if last:
                    raise LogdeckError.from_transport(exc) from exc
                time.sleep(self.retry.delay(attempt, None))
                continue
            if response.status_code in self.retry.statuses and not last:
                time.sleep(self.retry.delay(attempt, response))
                continue
            return _result(call, response)  # type: ignore[return-value]
        raise AssertionError("unreachable")

    def pages(self, call: Call[Any]) -> Iterator[Any]:
        """Every item of a list, following `next_cursor` page after page."""
        params = dict(call.params or {})
        while True:
            page = self.run(
                Call(call.method, call.path, lambda body: body, params, idempotent=True)
            )
            for item in page["items"]:
                yield call.parse(item)
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def close(self) -> None:
        if self.own_client:
            self.client.close()


class AsyncTransport:
    """Requests over one `httpx.AsyncClient`."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        url, key = _settings(base_url, api_key)
        self.retry = retry
        self.own_client = http_client is None
        self.client = http_client or httpx.AsyncClient(
            timeout=timeout or DEFAULT_TIMEOUT,
            transport=httpx.AsyncHTTPTransport(socket_options=SOCKET_OPTIONS),
        )
        self.base_url = url
        self.headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}

    async def run(self, call: Call[T]) -> T:
        attempts = self.retry.attempts if call.idempotent else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self.client.request(
                    call.method,
                    self.base_url + call.path,
                    params=_clean(call.params),
                    json=call.json,
                    headers=self.headers,
                )
            except httpx.TransportError as exc:
                if last:
                    raise LogdeckError.from_transport(exc) from exc
                await asyncio.sleep(self.retry.delay(attempt, None))
                continue
            if response.status_code in self.retry.statuses and not last:
                await asyncio.sleep(self.retry.delay(attempt, response))
                continue
            return _result(call, response)  # type: ignore[return-value]
        raise AssertionError("unreachable")

    async def pages(self, call: Call[Any]) -> AsyncIterator[Any]:
        params = dict(call.params or {})
        while True:
            page = await self.run(
                Call(call.method, call.path, lambda body: body, params, idempotent=True)
            )
            for item in page["items"]:
                yield call.parse(item)
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    async def close(self) -> None:
        if self.own_client:
            await self.client.aclose()
