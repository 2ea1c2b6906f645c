"""`Logdeck` and `AsyncLogdeck`: the API's resources over one reused connection pool."""

from __future__ import annotations

from typing import Any

import httpx

from logdeck_client._transport import AsyncTransport, RetryPolicy, SyncTransport
from logdeck_client.resources import (
    Agents,
    Memories,
    Messages,
    Sessions,
    StatsResource,
    Threads,
    ToolCalls,
    Users,
)


class _Resources:
    def _mount(self, transport: Any) -> None:
        self.users = Users(transport)
        self.agents = Agents(transport)
        self.sessions = Sessions(transport)
        self.messages = Messages(transport)
        self.tool_calls = ToolCalls(transport)
        self.memories = Memories(transport)
        self.stats = StatsResource(transport)
        self.threads = Threads(transport)


class Logdeck(_Resources):
    """The synchronous client. `base_url` and `api_key` default to `LOGDECK_URL` and
    `LOGDECK_API_KEY`; `timeout` is in seconds (or an `httpx.Timeout`); `retry` says how
    idempotent calls are retried. Use it as a context manager, or `close()` it."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._transport = SyncTransport(
            base_url,
            api_key,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            http_client=http_client,
        )
        self._mount(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Logdeck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncLogdeck(_Resources):
    """The asynchronous client: the same resources, each call awaited, each `iter_*` an async
    iterator."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._transport = AsyncTransport(
            base_url,
            api_key,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            http_client=http_client,
        )
        self._mount(self._transport)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    async def aclose(self) -> None:
        await self._transport.close()

    async def __aenter__(self) -> AsyncLogdeck:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
