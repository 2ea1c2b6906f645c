"""`LogdeckSaver`: a LangGraph checkpointer that keeps a graph's threads in Logdeck.

A thread is the session of one agent whose external key is the `thread_id`. Each checkpoint
is stored as LangGraph's serializer made it (its type and bytes, given back byte for byte)
with its metadata (filterable) and its pending writes. Needs `langgraph-checkpoint`
(`pip install logdeck-client[langgraph]`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from logdeck_client.client import AsyncLogdeck, Logdeck
from logdeck_client.types import ThreadCheckpoint, TypedValue

MAX_PAGE = 500  # the API's largest page


def _namespace(config: RunnableConfig) -> str:
    return config["configurable"].get("checkpoint_ns", "") or ""


def _matches(tup: CheckpointTuple, filter: dict[str, Any] | None, before: str | None) -> bool:
    if before is not None and tup.config["configurable"]["checkpoint_id"] >= before:
        return False
    return all(tup.metadata.get(key) == value for key, value in (filter or {}).items())


class LogdeckSaver(BaseCheckpointSaver[str]):
    """LangGraph's `BaseCheckpointSaver` over Logdeck's API, sync and async.

    `agent` names the Logdeck agent whose sessions hold the threads (created on first use if
    it does not exist). Pass a `Logdeck` for the sync methods and an `AsyncLogdeck` for the
    async ones, or neither: they are then built from `base_url`/`api_key` or the
    `LOGDECK_URL`/`LOGDECK_API_KEY` environment, when first needed."""

    def __init__(
        self,
        *,
        agent: str = "langgraph",
        client: Logdeck | None = None,
        async_client: AsyncLogdeck | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.agent = agent
        self._client = client
        self._async_client = async_client
        self._base_url = base_url
        self._api_key = api_key
        self._agent_ready = False
        self._agent_lock = asyncio.Lock()

    # --- clients and the agent ------------------------------------------------------------

    @property
    def client(self) -> Logdeck:
        if self._client is None:
            self._client = Logdeck(self._base_url, self._api_key)
        if not self._agent_ready:
            self._client.agents.upsert(self.agent)
            self._agent_ready = True
        return self._client

    async def _aclient(self) -> AsyncLogdeck:
        if self._async_client is None:
            self._async_client = AsyncLogdeck(self._base_url, self._api_key)
        if not self._agent_ready:
            async with self._agent_lock:
                if not self._agent_ready:
                    await self._async_client.agents.upsert(self.agent)
                    self._agent_ready = True
        return self._async_client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        if self._async_client is not None:
            await self._async_client.aclose()

    # --- conversions ----------------------------------------------------------------------

    def _typed(self, value: Any) -> TypedValue:
        type_, data = self.serde.dumps_typed(value)
        return TypedValue.of(type_, data)

    def _put_args(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> dict[str, Any]:
        configurable = config["configurable"]
        return {
            "checkpoint_id": checkpoint["id"],
            "checkpoint": self._typed(checkpoint),
            "checkpoint_ns": _namespace(config),
            "parent_checkpoint_id": configurable.get("checkpoint_id"),
            "metadata": get_serializable_checkpoint_metadata(config, metadata),
        }

    def _writes_args(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> dict[str, Any]:
        configurable = config["configurable"]
        return {
            "checkpoint_id": configurable["checkpoint_id"],
            "checkpoint_ns": _namespace(config),
            "task_id": task_id,
            "task_path": task_path,
            "writes": [
                (WRITES_IDX_MAP.get(channel, idx), channel, self._typed(value))
                for idx, (channel, value) in enumerate(writes)
            ],
        }

    def _tuple(self, stored: ThreadCheckpoint) -> CheckpointTuple:
        def config(checkpoint_id: str) -> RunnableConfig:
            return {
                "configurable": {
                    "thread_id": stored.thread_id,
                    "checkpoint_ns": stored.checkpoint_ns,
                    "checkpoint_id": checkpoint_id,
                }
            }

        checkpoint = self.serde.loads_typed((stored.checkpoint.type, stored.checkpoint.bytes))
        writes = [
            (w.task_id, w.channel, self.serde.loads_typed((w.value.type, w.value.bytes)))
            for w in stored.pending_writes
        ]
        parent = stored.parent_checkpoint_id
        return CheckpointTuple(
            config=config(stored.checkpoint_id),
            checkpoint=checkpoint,
            metadata=stored.metadata,  # type: ignore[arg-type]
            parent_config=config(parent) if parent else None,
            pending_writes=writes,
        )

    @staticmethod
    def _list_args(
        config: RunnableConfig | None, before: RunnableConfig | None
    ) -> tuple[str | None, str | None, str | None, str | None]:
        configurable = (config or {}).get("configurable", {})
        before_id = get_checkpoint_id(before) if before else None
        return (
            configurable.get("thread_id"),
            configurable.get("checkpoint_ns"),
            configurable.get("checkpoint_id"),
            before_id,
        )

    # --- sync -----------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id = str(config["configurable"]["thread_id"])
        args = self._put_args(config, checkpoint, metadata)
        self.client.threads.put_checkpoint(self.agent, thread_id, **args)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": args["checkpoint_ns"],
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id = str(config["configurable"]["thread_id"])
        args = self._writes_args(config, writes, task_id, task_path)
        self.client.threads.put_writes(self.agent, thread_id, **args)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        stored = self.client.threads.get_checkpoint(
            self.agent,
            str(config["configurable"]["thread_id"]),
            checkpoint_ns=_namespace(config),
            checkpoint_id=get_checkpoint_id(config),
        )
        return None if stored is None else self._tuple(stored)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        thread_id, namespace, checkpoint_id, before_id = self._list_args(config, before)
        if checkpoint_id is not None and config is not None:
            tup = self.get_tuple(config)
            if tup is not None and _matches(tup, filter, before_id) and limit != 0:
                yield tup
            return
        if limit is not None and limit <= 0:
            return
        stored = self.client.threads.iter_checkpoints(
            self.agent,
            None if thread_id is None else str(thread_id),
            checkpoint_ns=namespace,
            before=before_id,
            metadata=filter,
            page_size=min(limit or MAX_PAGE, MAX_PAGE),
        )
        for count, item in enumerate(stored, start=1):
            yield self._tuple(item)
            if limit is not None and count >= limit:
                return

    def delete_thread(self, thread_id: str) -> None:
        self.client.threads.delete(self.agent, str(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.client.threads.delete_for_runs(self.agent, list(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.client.threads.copy(self.agent, str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.client.threads.prune(self.agent, [str(t) for t in thread_ids], strategy=strategy)

    # --- async ----------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        client = await self._aclient()
        thread_id = str(config["configurable"]["thread_id"])
        args = self._put_args(config, checkpoint, metadata)
        await client.threads.put_checkpoint(self.agent, thread_id, **args)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": args["checkpoint_ns"],
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        client = await self._aclient()
        thread_id = str(config["configurable"]["thread_id"])
        args = self._writes_args(config, writes, task_id, task_path)
        await client.threads.put_writes(self.agent, thread_id, **args)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        client = await self._aclient()
        stored = await client.threads.get_checkpoint(
            self.agent,
            str(config["configurable"]["thread_id"]),
            checkpoint_ns=_namespace(config),
            checkpoint_id=get_checkpoint_id(config),
        )
        return None if stored is None else self._tuple(stored)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        thread_id, namespace, checkpoint_id, before_id = self._list_args(config, before)
        if checkpoint_id is not None and config is not None:
            tup = await self.aget_tuple(config)
            if tup is not None and _matches(tup, filter, before_id) and limit != 0:
                yield tup
            return
        if limit is not None and limit <= 0:
            return
        client = await self._aclient()
        stored = client.threads.iter_checkpoints(
            self.agent,
            None if thread_id is None else str(thread_id),
            checkpoint_ns=namespace,
            before=before_id,
            metadata=filter,
            page_size=min(limit or MAX_PAGE, MAX_PAGE),
        )
        count = 0
        async for item in stored:
            yield self._tuple(item)
            count += 1
            if limit is not None and count >= limit:
                return

    async def adelete_thread(self, thread_id: str) -> None:
        client = await self._aclient()
        await client.threads.delete(self.agent, str(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        client = await self._aclient()
        await client.threads.delete_for_runs(self.agent, list(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        client = await self._aclient()
        await client.threads.copy(self.agent, str(source_thread_id), str(target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        client = await self._aclient()
        await client.threads.prune(self.agent, [str(t) for t in thread_ids], strategy=strategy)

    def get_next_version(self, current: str | None, channel: None) -> str:
        # As LangGraph's own savers: a zero-padded counter with a random tail, ordered as text.
        import random

        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        next_v = current_v + 1
        next_h = random.random()
        return f"{next_v:032}.{next_h:016}"
