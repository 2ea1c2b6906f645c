"""`LogdeckSession`: an OpenAI Agents SDK session whose history lives in Logdeck.

The SDK's `session_id` is the external key of a session of one agent. Each item is one
Logdeck message whose payload (`raw`) is the item exactly as given, so `get_items()` answers
it back unchanged; it is also an ordinary message: a function call is an assistant message
with a tool call (its input), its output completes that call (a failed tool is a failed call,
found in the error groups), messages keep their role and text. Needs `openai-agents`
(`pip install logdeck-client[openai-agents]`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from logdeck_client.client import AsyncLogdeck
from logdeck_client.errors import LogdeckError

# The text the SDK's default failure handler gives the model when a function tool raises.
SDK_TOOL_ERROR = "An error occurred while running the tool"
MAX_LAST = 500  # the API's largest page: longer tails are read whole


def sdk_tool_failed(output: Any) -> bool:
    """Whether a function call's output is the SDK's report of a failed tool."""
    return isinstance(output, str) and output.startswith(SDK_TOOL_ERROR)


def _text(content: Any) -> str:
    """The readable text of an item's content: a string, or the text of its parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text") or part.get("refusal") or ""
                if text:
                    parts.append(str(text))
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return json.dumps(content, ensure_ascii=False, default=str)


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def item_message(item: dict[str, Any]) -> dict[str, Any]:
    """The Logdeck message that stores `item` (with the item itself as its payload)."""
    kind = item.get("type")
    if kind == "function_call":
        arguments = _json_or_text(item.get("arguments") or "")
        return {
            "role": "assistant",
            "content_type": "tool_use",
            "raw": item,
            "tool_calls": [
                {
                    "tool_name": str(item.get("name") or "function")[:200],
                    "call_id": str(item.get("call_id") or "")[:200],
                    "input": arguments if isinstance(arguments, dict) else {"arguments": arguments},
                    "state": "running",
                }
            ],
        }
    if kind == "function_call_output":
        output = item.get("output")
        return {
            "role": "tool",
            "content_type": "tool_result",
            "text_content": _text(output),
            "raw": item,
        }
    if kind in (None, "message"):
        role = ROLES.get(str(item.get("role")), "assistant")
        return {"role": role, "text_content": _text(item.get("content")), "raw": item}
    if kind == "reasoning":
        return {"role": "assistant", "text_content": _text(item.get("summary")), "raw": item}
    # Other items (web search, computer and MCP calls, ...) are kept as assistant messages.
    return {"role": "assistant", "text_content": "", "raw": item}


class LogdeckSession:
    """The Agents SDK's `Session` protocol over Logdeck's API.

    `agent` names the Logdeck agent whose sessions hold the conversations (created if it does
    not exist). `tool_failed` says whether a function call's output reports a failure (by
    default, the SDK's own failure message)."""

    def __init__(
        self,
        session_id: str,
        *,
        agent: str = "openai-agents",
        client: AsyncLogdeck | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        session_settings: Any = None,
        tool_failed: Callable[[Any], bool] = sdk_tool_failed,
    ) -> None:
        self.session_id = session_id
        self.session_settings = session_settings
        self.agent = agent
        self.tool_failed = tool_failed
        self._client = client
        self._base_url = base_url
        self._api_key = api_key
        self._logdeck_id: Any = None
        self._lock = asyncio.Lock()

    @property
    def client(self) -> AsyncLogdeck:
        if self._client is None:
            self._client = AsyncLogdeck(self._base_url, self._api_key)
        return self._client

    async def _find(self) -> Any:
        """The Logdeck session's id, or None before anything was stored."""
        if self._logdeck_id is None:
            try:
                page = await self.client.sessions.list(
                    agent=self.agent, external_key=self.session_id, limit=1
                )
            except LogdeckError as error:
                if error.status == 404:  # the agent does not exist yet
                    return None
                raise
            if page.items:
                self._logdeck_id = page.items[0].id
        return self._logdeck_id

    async def _ensure(self) -> Any:
        if self._logdeck_id is None:
            await self.client.agents.upsert(self.agent)
            session = await self.client.sessions.get_or_create(
                self.agent, self.session_id, platform="openai-agents"
            )
            self._logdeck_id = session.id
        return self._logdeck_id

    async def get_items(self, limit: int | None = None) -> list[Any]:
        from agents.memory.session_settings import resolve_session_limit

        session_limit = resolve_session_limit(limit, self.session_settings)
        logdeck_id = await self._find()
        if logdeck_id is None or (session_limit is not None and session_limit <= 0):
            return []
        if session_limit is not None and session_limit <= MAX_LAST:
            return list(await self.client.sessions.last_payloads(logdeck_id, session_limit))
        items = [raw async for raw in self.client.sessions.iter_payloads(logdeck_id)]
        return items if session_limit is None else items[-session_limit:]

    async def add_items(self, items: list[Any]) -> None:
        if not items:
            return
        async with self._lock:
            logdeck_id = await self._ensure()
            plain = [item if isinstance(item, dict) else _as_dict(item) for item in items]
            await self.client.sessions.append(logdeck_id, [item_message(i) for i in plain])
            for item in plain:
                if item.get("type") == "function_call_output" and item.get("call_id"):
                    await self._complete(logdeck_id, item)

    async def _complete(self, logdeck_id: Any, item: dict[str, Any]) -> None:
        """Finish the tool call its function call started with this output, or its error."""
        calls = await self.client.tool_calls.list(
            session=logdeck_id, call_id=str(item["call_id"])[:200], limit=1
        )
        if not calls.items:
            return  # the call was made outside this session
        output = item.get("output")
        if self.tool_failed(output):
            message = _text(output) or "The tool failed."
            await self.client.tool_calls.finish(calls.items[0].id, error_message=message)
        else:
            await self.client.tool_calls.finish(
                calls.items[0].id, state="completed", output=_json_or_text(output)
            )

    async def pop_item(self) -> Any:
        async with self._lock:
            logdeck_id = await self._find()
            if logdeck_id is None:
                return None
            popped = await self.client.sessions.pop_message(logdeck_id)
            return None if popped is None else popped.raw

    async def clear_session(self) -> None:
        async with self._lock:
            logdeck_id = await self._find()
            if logdeck_id is not None:
                await self.client.sessions.clear_messages(logdeck_id)


def _as_dict(item: Any) -> dict[str, Any]:
    # The SDK's items are dicts; a pydantic model (an output item) is dumped as the SDK does.
    dump = getattr(item, "model_dump", None)
    if dump is None:
        raise TypeError(f"An item must be a dict, not {type(item).__name__}.")
    return dump(exclude_unset=True)
