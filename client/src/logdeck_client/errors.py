"""The one exception the client raises: the API's error shape, or why no answer came."""

from __future__ import annotations

from typing import Any

import httpx


class LogdeckError(Exception):
    """An error answered by Logdeck (`status`, `code`, `message`, `fields` as the API's error
    shape has them), or a request that got no answer (`status` 0, `code` "connection_error"
    or "timeout")."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []

    @classmethod
    def from_transport(cls, exc: httpx.TransportError) -> LogdeckError:
        code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error"
        return cls(0, code, str(exc) or type(exc).__name__)
