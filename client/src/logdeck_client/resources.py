"""Every resource of the API, written once for both clients: a method builds its `Call` and
the client's transport runs it (returning the result on `Logdeck`, an awaitable of it on
`AsyncLogdeck`). `iter_*` methods follow cursors to the end of a list (an iterator, or an async
iterator). Which calls are retried is said by `idempotent=True` on each."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from logdeck_client._transport import Call
from logdeck_client.types import (
    Agent,
    AppendResult,
    Checkpoint,
    CheckpointStored,
    ErrorGroup,
    Memory,
    Message,
    Page,
    Session,
    Stats,
    ThreadChange,
    ThreadCheckpoint,
    ToolCall,
    TypedValue,
    User,
)

Unset: Any = object()  # a field not given (None clears where the API allows it)


def _page(record: Any) -> Any:
    def parse(body: dict[str, Any]) -> Page[Any]:
        return Page([record.from_json(i) for i in body["items"]], body.get("next_cursor"))

    return parse


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not Unset}


def _ref(value: Any) -> str:
    return quote(str(value), safe="")


def _dump(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


class _Resource:
    def __init__(self, transport: Any) -> None:
        self._t = transport


class Users(_Resource):
    """End users (`/users`): upsert by email, list, get, change, delete."""

    def upsert(self, email: str, **fields: Any) -> Any:
        body = {"email": email, **fields}
        return self._t.run(Call("POST", "/users", User.from_json, json=body, idempotent=True))

    def list(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Any:
        params = {**filters, "limit": limit, "cursor": cursor}
        return self._t.run(Call("GET", "/users", _page(User), params, idempotent=True))

    def iter(self, **filters: Any) -> Any:
        return self._t.pages(Call("GET", "/users", User.from_json, filters))

    def get(self, ref: int | str) -> Any:
        return self._t.run(Call("GET", f"/users/{_ref(ref)}", User.from_json, idempotent=True))

    def update(self, ref: int | str, **fields: Any) -> Any:
        path = f"/users/{_ref(ref)}"
        return self._t.run(Call("PATCH", path, User.from_json, json=fields, idempotent=True))

    def delete(self, ref: int | str) -> Any:
        return self._t.run(Call("DELETE", f"/users/{_ref(ref)}", lambda b: b["deleted"]))


class Agents(_Resource):
    """Agents (`/agents`): upsert by name, list, get, change, delete, stats."""

    def upsert(self, name: str, **fields: Any) -> Any:
        body = {"name": name, **fields}
        return self._t.run(Call("POST", "/agents", Agent.from_json, json=body, idempotent=True))

    def list(
        self, *, active_only: bool = False, limit: int | None = None, cursor: str | None = None
    ) -> Any:
        params = {"active_only": active_only, "limit": limit, "cursor": cursor}
        return self._t.run(Call("GET", "/agents", _page(Agent), params, idempotent=True))

    def iter(self, *, active_only: bool = False) -> Any:
        return self._t.pages(Call("GET", "/agents", Agent.from_json, {"active_only": active_only}))

    def get(self, ref: int | str) -> Any:
        return self._t.run(Call("GET", f"/agents/{_ref(ref)}", Agent.from_json, idempotent=True))

    def update(self, ref: int | str, **fields: Any) -> Any:
        path = f"/agents/{_ref(ref)}"
        return self._t.run(Call("PATCH", path, Agent.from_json, json=fields, idempotent=True))

    def delete(self, ref: int | str) -> Any:
        return self._t.run(Call("DELETE", f"/agents/{_ref(ref)}", lambda b: b["deleted"]))

    def stats(self, ref: int | str, *, days: int = 30) -> Any:
        path = f"/agents/{_ref(ref)}/stats"
        return self._t.run(Call("GET", path, Stats.from_json, {"days": days}, idempotent=True))


class Sessions(_Resource):
    """Sessions (`/sessions`) with their messages and (plain) checkpoints."""

    def start(
        self,
        agent: int | str,
        *,
        external_key: str = "",
        user: int | str | None = None,
        name: str = "",
        platform: str = "",
        metadata: dict[str, Any] | None = None,
        id: uuid.UUID | str | None = None,
        created_at: str | None = None,
    ) -> Any:
        """Start a session. With an `external_key` (or an own `id`) it is idempotent and
        retried: the agent's session with that key is answered if it exists."""
        body = {
            "agent": str(agent),
            "external_key": external_key,
            "user": None if user is None else str(user),
            "name": name,
            "platform": platform,
            "metadata": metadata or {},
            "id": None if id is None else str(id),
            "created_at": created_at,
        }
        body = {k: v for k, v in body.items() if v is not None}
        retried = bool(external_key)
        return self._t.run(
            Call("POST", "/sessions", Session.from_json, json=body, idempotent=retried)
        )

    def get_or_create(self, agent: int | str, external_key: str, **fields: Any) -> Any:
        """The agent's session with this external key, started if there is none."""
        return self.start(agent, external_key=external_key, **fields)

    def get(self, session_id: uuid.UUID | str) -> Any:
        path = f"/sessions/{session_id}"
        return self._t.run(Call("GET", path, Session.from_json, idempotent=True))

    def list(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Any:
        params = {**{k: _dump(v) for k, v in filters.items()}, "limit": limit, "cursor": cursor}
        return self._t.run(Call("GET", "/sessions", _page(Session), params, idempotent=True))

    def iter(self, **filters: Any) -> Any:
        params = {k: _dump(v) for k, v in filters.items()}
        return self._t.pages(Call("GET", "/sessions", Session.from_json, params))

    def update(self, session_id: uuid.UUID | str, **fields: Any) -> Any:
        path = f"/sessions/{session_id}"
        return self._t.run(Call("PATCH", path, Session.from_json, json=fields, idempotent=True))

    def finish(self, session_id: uuid.UUID | str, *, finished_at: str | None = None) -> Any:
        """Finish a session; finishing again keeps the first time (idempotent)."""
        body = {"finished_at": finished_at} if finished_at else {}
        path = f"/sessions/{session_id}/finish"
        return self._t.run(Call("POST", path, Session.from_json, json=body, idempotent=True))

    def delete(self, session_id: uuid.UUID | str) -> Any:
        return self._t.run(Call("DELETE", f"/sessions/{session_id}", lambda b: b["deleted"]))

    def append(self, session_id: uuid.UUID | str, messages: Sequence[dict[str, Any]]) -> Any:
        """Append messages with their tool calls, all or none. Retried only when every message
        carries its `seq` (the server then stores a replayed batch once)."""
        retried = bool(messages) and all(m.get("seq") is not None for m in messages)
        path = f"/sessions/{session_id}/messages"
        body = {"messages": list(messages)}
        return self._t.run(
            Call("POST", path, AppendResult.from_json, json=body, idempotent=retried)
        )

    def messages(
        self, session_id: uuid.UUID | str, *, limit: int | None = None, cursor: str | None = None
    ) -> Any:
        path = f"/sessions/{session_id}/messages"
        params = {"limit": limit, "cursor": cursor}
        return self._t.run(Call("GET", path, _page(Message), params, idempotent=True))

    def iter_messages(self, session_id: uuid.UUID | str, *, page_size: int = 500) -> Any:
        path = f"/sessions/{session_id}/messages"
        return self._t.pages(Call("GET", path, Message.from_json, {"limit": page_size}))

    def pop_message(self, session_id: uuid.UUID | str) -> Any:
        """Remove the session's last message (with its tool calls, counters following) and
        answer it with its payload; None when the session has no message. Never retried: a
        lost answer may hide a message that is gone."""
        path = f"/sessions/{session_id}/messages/last"

        def parse(body: dict[str, Any]) -> Message | None:
            return None if body["message"] is None else Message.from_json(body["message"])

        return self._t.run(Call("DELETE", path, parse))

    def clear_messages(self, session_id: uuid.UUID | str) -> Any:
        """Remove every message of the session (idempotent); how many went."""
        path = f"/sessions/{session_id}/messages"
        return self._t.run(Call("DELETE", path, lambda b: b["deleted"], idempotent=True))

    def last_payloads(self, session_id: uuid.UUID | str, last: int) -> Any:
        """The provider payloads (`raw`) of the session's last `last` messages (at most 500),
        oldest first."""
        path = f"/sessions/{session_id}/payloads"
        params = {"last": last, "limit": last or None}
        return self._t.run(
            Call("GET", path, lambda b: [i["raw"] for i in b["items"]], params, idempotent=True)
        )

    def iter_payloads(self, session_id: uuid.UUID | str, *, page_size: int = 500) -> Any:
        """Every message's provider payload (`raw`), in order."""
        path = f"/sessions/{session_id}/payloads"
        return self._t.pages(Call("GET", path, lambda item: item["raw"], {"limit": page_size}))

    def save_checkpoint(
        self, session_id: uuid.UUID | str, *, type: str = "", data: Any = None
    ) -> Any:
        path = f"/sessions/{session_id}/checkpoints"
        body = {"type": type, "data": data}
        return self._t.run(Call("POST", path, Checkpoint.from_json, json=body))

    def checkpoints(
        self, session_id: uuid.UUID | str, *, limit: int | None = None, cursor: str | None = None
    ) -> Any:
        path = f"/sessions/{session_id}/checkpoints"
        params = {"limit": limit, "cursor": cursor}
        return self._t.run(Call("GET", path, _page(Checkpoint), params, idempotent=True))

    def latest_checkpoint(self, session_id: uuid.UUID | str) -> Any:
        """The newest checkpoint of the session, or None."""
        path = f"/sessions/{session_id}/checkpoints/latest"
        return self._t.run(
            Call("GET", path, Checkpoint.from_json, idempotent=True, missing_ok=True)
        )


class Messages(_Resource):
    """Messages across sessions (`/messages`)."""

    def list(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Any:
        params = {**{k: _dump(v) for k, v in filters.items()}, "limit": limit, "cursor": cursor}
        return self._t.run(Call("GET", "/messages", _page(Message), params, idempotent=True))

    def iter(self, **filters: Any) -> Any:
        params = {k: _dump(v) for k, v in filters.items()}
        return self._t.pages(Call("GET", "/messages", Message.from_json, params))

    def get(self, message_id: int) -> Any:
        path = f"/messages/{int(message_id)}"
        return self._t.run(Call("GET", path, Message.from_json, idempotent=True))


class ToolCalls(_Resource):
    """Tool calls (`/tool-calls`) and their error groups."""

    def list(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Any:
        params = {**{k: _dump(v) for k, v in filters.items()}, "limit": limit, "cursor": cursor}
        return self._t.run(Call("GET", "/tool-calls", _page(ToolCall), params, idempotent=True))

    def iter(self, **filters: Any) -> Any:
        params = {k: _dump(v) for k, v in filters.items()}
        return self._t.pages(Call("GET", "/tool-calls", ToolCall.from_json, params))

    def get(self, tool_call_id: int) -> Any:
        path = f"/tool-calls/{int(tool_call_id)}"
        return self._t.run(Call("GET", path, ToolCall.from_json, idempotent=True))

    def finish(self, tool_call_id: int, **fields: Any) -> Any:
        """Record a call's outcome (output, or error_message); the same outcome again changes
        nothing (idempotent)."""
        path = f"/tool-calls/{int(tool_call_id)}"
        return self._t.run(Call("PATCH", path, ToolCall.from_json, json=fields, idempotent=True))

    def errors(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Any:
        params = {**filters, "limit": limit, "cursor": cursor}
        path = "/tool-calls/errors"
        return self._t.run(Call("GET", path, _page(ErrorGroup), params, idempotent=True))

    def iter_errors(self, **filters: Any) -> Any:
        return self._t.pages(Call("GET", "/tool-calls/errors", ErrorGroup.from_json, filters))


class Memories(_Resource):
    """Memories (`/memories`): upsert by (name, agent, user), list, by name, change, delete."""

    def upsert(self, name: str, **fields: Any) -> Any:
        body = {"name": name, **{k: _dump(v) for k, v in fields.items()}}
        return self._t.run(Call("POST", "/memories", Memory.from_json, json=body, idempotent=True))

    def list(self, *, limit: int | None = None, cursor: str | None = None, **filters: Any) -> Any:
        params = {**{k: _dump(v) for k, v in filters.items()}, "limit": limit, "cursor": cursor}
        return self._t.run(Call("GET", "/memories", _page(Memory), params, idempotent=True))

    def iter(self, **filters: Any) -> Any:
        params = {k: _dump(v) for k, v in filters.items()}
        return self._t.pages(Call("GET", "/memories", Memory.from_json, params))

    def by_name(self, name: str, *, agent: str | None = None, user: str | None = None) -> Any:
        params = {"name": name, "agent": agent, "user": user}
        path = "/memories/by-name"
        return self._t.run(
            Call("GET", path, Memory.from_json, params, idempotent=True, missing_ok=True)
        )

    def get(self, memory_id: uuid.UUID | str) -> Any:
        path = f"/memories/{memory_id}"
        return self._t.run(Call("GET", path, Memory.from_json, idempotent=True))

    def update(self, memory_id: uuid.UUID | str, **fields: Any) -> Any:
        path = f"/memories/{memory_id}"
        body = {k: _dump(v) for k, v in fields.items()}
        return self._t.run(Call("PATCH", path, Memory.from_json, json=body, idempotent=True))

    def delete(self, memory_id: uuid.UUID | str) -> Any:
        return self._t.run(Call("DELETE", f"/memories/{memory_id}", lambda b: b["deleted"]))


class StatsResource(_Resource):
    """Totals and the per-day series (`/stats`), for one agent or all."""

    def get(self, *, agent: int | str | None = None, days: int = 30) -> Any:
        params = {"agent": agent, "days": days}
        return self._t.run(Call("GET", "/stats", Stats.from_json, params, idempotent=True))


class Threads(_Resource):
    """Framework threads (`/threads`): a session found by its external key, its checkpoints
    with the serializer's bytes and their pending writes. Every call is idempotent."""

    def put_checkpoint(
        self,
        agent: str,
        thread_id: str,
        *,
        checkpoint_id: str,
        checkpoint: TypedValue,
        checkpoint_ns: str = "",
        parent_checkpoint_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        body = {
            "agent": agent,
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
            "parent_checkpoint_id": parent_checkpoint_id,
            "checkpoint": checkpoint.to_json(),
            "metadata": metadata or {},
        }
        return self._t.run(
            Call("POST", "/threads/checkpoints", CheckpointStored.from_json, json=body,
                 idempotent=True)
        )  # fmt: skip

    def put_writes(
        self,
        agent: str,
        thread_id: str,
        *,
        checkpoint_id: str,
        task_id: str,
        writes: Sequence[tuple[int, str, TypedValue]],
        checkpoint_ns: str = "",
        task_path: str = "",
    ) -> Any:
        body = {
            "agent": agent,
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
            "task_id": task_id,
            "task_path": task_path,
            "writes": [
                {"idx": idx, "channel": channel, "value": value.to_json()}
                for idx, channel, value in writes
            ],
        }
        path = "/threads/writes"
        return self._t.run(Call("POST", path, lambda b: b["writes"], json=body, idempotent=True))

    def get_checkpoint(
        self,
        agent: str,
        thread_id: str,
        *,
        checkpoint_ns: str = "",
        checkpoint_id: str | None = None,
    ) -> Any:
        """One checkpoint by id, or the newest of the namespace; None if there is none."""
        params = {
            "agent": agent,
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
        return self._t.run(
            Call("GET", "/threads/checkpoint", ThreadCheckpoint.from_json, params,
                 idempotent=True, missing_ok=True)
        )  # fmt: skip

    def _list_params(
        self,
        agent: str,
        thread_id: str | None,
        checkpoint_ns: str | None,
        before: str | None,
        metadata: dict[str, Any] | None,
    ) -> dict[str, Any]:
        import json

        return {
            "agent": agent,
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "before": before,
            "metadata": None if not metadata else json.dumps(metadata),
        }

    def list_checkpoints(
        self,
        agent: str,
        thread_id: str | None = None,
        *,
        checkpoint_ns: str | None = None,
        before: str | None = None,
        metadata: dict[str, Any] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Any:
        params = self._list_params(agent, thread_id, checkpoint_ns, before, metadata)
        params.update(limit=limit, cursor=cursor)
        return self._t.run(
            Call("GET", "/threads/checkpoints", _page(ThreadCheckpoint), params, idempotent=True)
        )

    def iter_checkpoints(
        self,
        agent: str,
        thread_id: str | None = None,
        *,
        checkpoint_ns: str | None = None,
        before: str | None = None,
        metadata: dict[str, Any] | None = None,
        page_size: int | None = None,
    ) -> Any:
        params = self._list_params(agent, thread_id, checkpoint_ns, before, metadata)
        params["limit"] = page_size
        return self._t.pages(
            Call("GET", "/threads/checkpoints", ThreadCheckpoint.from_json, params)
        )

    def delete(self, agent: str, thread_id: str) -> Any:
        body = {"agent": agent, "thread_id": thread_id}
        return self._t.run(
            Call("POST", "/threads/delete", ThreadChange.from_json, json=body, idempotent=True)
        )

    def delete_for_runs(self, agent: str, run_ids: Sequence[str]) -> Any:
        body = {"agent": agent, "run_ids": [str(r) for r in run_ids]}
        return self._t.run(
            Call("POST", "/threads/delete-for-runs", ThreadChange.from_json, json=body,
                 idempotent=True)
        )  # fmt: skip

    def copy(self, agent: str, source_thread_id: str, target_thread_id: str) -> Any:
        body = {
            "agent": agent,
            "source_thread_id": source_thread_id,
            "target_thread_id": target_thread_id,
        }
        return self._t.run(
            Call("POST", "/threads/copy", ThreadChange.from_json, json=body, idempotent=True)
        )

    def prune(self, agent: str, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> Any:
        body = {"agent": agent, "thread_ids": list(thread_ids), "strategy": strategy}
        return self._t.run(
            Call("POST", "/threads/prune", ThreadChange.from_json, json=body, idempotent=True)
        )
