"""LangGraph checkpointers side by side: LogdeckSaver over HTTP to a server on this machine,
LangGraph's own PostgresSaver on the same database, and SqliteSaver on a file.

A step is what a graph's super-step asks of its checkpointer: put a checkpoint, put the
pending writes of a task, read the checkpoint back (get_tuple). The checkpoints and writes are
the ones a real StateGraph run made, recorded once and replayed on each saver alike. Lists
read 10 checkpoints of a 10,000-checkpoint thread, newest first and far back, to show they
take the same time wherever they start (keyset)."""

from __future__ import annotations

import copy
import operator
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, TypedDict

from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from bench.measure import Figure, measure_together

THREAD_CHECKPOINTS = 10_000
LIST_LIMIT = 10


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadedWSGIServer):
    """Sends each answer at once (TCP_NODELAY), as production servers do: wsgiref writes the
    headers and the body apart, and the body would wait for a delayed acknowledgement."""

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address


@contextmanager
def live_server() -> Iterator[str]:
    """Logdeck's WSGI application on 127.0.0.1 in a thread of this process, one thread per
    request (each with its own database connection, as a real server's workers)."""
    server = _Server(("127.0.0.1", 0), _Quiet)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


class State(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]


def _step(state: State) -> dict[str, Any]:
    return {"count": state["count"] + 1, "log": [f"step {state['count'] + 1}"]}


class _Recorder(InMemorySaver):
    """InMemorySaver that keeps what each put and put_writes was given."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded_puts: list[tuple[Any, ...]] = []
        self.recorded_writes: list[tuple[Any, ...]] = []

    def put(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        self.recorded_puts.append((None, *copy.deepcopy((checkpoint, metadata, new_versions))))
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(self, config, writes, task_id, task_path=""):  # type: ignore[no-untyped-def]
        self.recorded_writes.append((None, list(writes), task_id, task_path))
        return super().put_writes(config, writes, task_id, task_path)


def recorded_step() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A put and a put_writes of a real run: a five-node StateGraph's last super-step."""
    graph = StateGraph(State)
    names = [f"n{i}" for i in range(5)]
    for name in names:
        graph.add_node(name, _step)
    graph.add_edge(START, names[0])
    for a, b in pairwise(names):
        graph.add_edge(a, b)
    graph.add_edge(names[-1], END)
    recorder = _Recorder()
    graph.compile(checkpointer=recorder).invoke(
        {"count": 0, "log": []}, {"configurable": {"thread_id": "recorded"}}
    )
    return recorder.recorded_puts[-2], recorder.recorded_writes[-1]


def step_call(saver: BaseCheckpointSaver, thread_id: str) -> Callable[[], Any]:
    """One super-step on `saver`: a new checkpoint (the recorded one under a fresh id, child of
    the previous), the recorded task's writes for it, and get_tuple."""
    (_config, checkpoint, metadata, new_versions), (_, writes, task_id, task_path) = recorded_step()
    parent: dict[str, Any] = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}

    def call() -> Any:
        nonlocal parent
        fresh = {**checkpoint, "id": str(uuid6(clock_seq=-1))}
        stored = saver.put(parent, fresh, metadata, new_versions)
        saver.put_writes(stored, writes, task_id, task_path)
        found = saver.get_tuple(stored)
        assert found is not None and found.checkpoint["id"] == fresh["id"]
        parent = stored
        return found

    return call


def empty_calls(client: Any, server: str, count: int) -> Callable[[], Any]:
    """`count` API calls that do nothing but authenticate and answer (the benchmark's empty API
    list) on the saver's own connection: the least a step of `count` requests costs here."""
    transport = client._transport
    url = f"{server}/bench-framework/api/sessions"

    def call() -> None:
        for _ in range(count):
            transport.client.get(url, headers=transport.headers).raise_for_status()

    return call


def fill_thread(saver: BaseCheckpointSaver, thread_id: str, count: int) -> list[str]:
    """`count` checkpoints on one thread, each the child of the last; their ids, oldest first."""
    (_config, checkpoint, metadata, new_versions), _ = recorded_step()
    parent: dict[str, Any] = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    ids = []
    for _ in range(count):
        fresh = {**checkpoint, "id": str(uuid6(clock_seq=-1))}
        parent = saver.put(parent, fresh, metadata, new_versions)
        ids.append(fresh["id"])
    return ids


def fill_logdeck_thread(agent: str, thread_id: str, count: int) -> list[str]:
    """The same thread in Logdeck, written in bulk (one transaction) rather than by 10,000
    requests; the rows are those the API's put stores."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from agents.services import agent_upsert
    from sessions_app.models import Checkpoint
    from sessions_app.services import session_get_or_start
    from sessions_app.thread_services import LANGGRAPH_CHECKPOINT

    (_config, checkpoint, metadata, _versions), _ = recorded_step()
    serde = JsonPlusSerializer()
    agent_row, _ = agent_upsert(name=agent)
    session, _ = session_get_or_start(agent=agent_row, external_key=thread_id)
    ids, rows, parent = [], [], ""
    for _ in range(count):
        fresh = {**checkpoint, "id": str(uuid6(clock_seq=-1))}
        state_type, state = serde.dumps_typed(fresh)
        rows.append(
            Checkpoint(
                session=session,
                type=LANGGRAPH_CHECKPOINT,
                checkpoint_id=fresh["id"],
                parent_checkpoint_id=parent,
                state_type=state_type,
                state=state,
                metadata=dict(metadata),
            )
        )
        ids.append(fresh["id"])
        parent = fresh["id"]
    Checkpoint.objects.bulk_create(rows, batch_size=1000)
    return ids


def list_call(saver: BaseCheckpointSaver, thread_id: str, before: str | None) -> Callable[[], Any]:
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    before_config = {"configurable": {"checkpoint_id": before}} if before else None

    def call() -> Any:
        found = list(saver.list(config, before=before_config, limit=LIST_LIMIT))
        assert len(found) == LIST_LIMIT
        return found

    return call


def measure(database_url: str, write_key: str, *, warmup: int, repeat: int) -> dict[str, Any]:
    """The figures of the three rows: a step, and a list from the newest and from far back."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver
    from logdeck_client import Logdeck
    from logdeck_client.langgraph import LogdeckSaver

    results: dict[str, dict[str, Figure]] = {}
    run = str(uuid6(clock_seq=-1))[-12:]  # this run's threads, apart from earlier runs'
    with (
        live_server() as url,
        Logdeck(url, write_key) as client,
        PostgresSaver.from_conn_string(database_url) as postgres,
        tempfile.TemporaryDirectory(prefix="logdeck-bench-lg-") as tmp,
        SqliteSaver.from_conn_string(str(Path(tmp) / "checkpoints.sqlite")) as sqlite,
    ):
        postgres.setup()
        sqlite.setup()
        logdeck = LogdeckSaver(agent="bench-langgraph", client=client)
        results["step"] = measure_together(
            {
                "logdeck": step_call(logdeck, f"step-{run}"),
                "stock": step_call(postgres, f"step-{run}"),
                "floor": step_call(sqlite, f"step-{run}"),
            },
            warmup={"logdeck": warmup, "stock": warmup, "floor": warmup},
            repeat=max(repeat * 10, 30),  # a step is short: more samples
        )
        # A step is three requests: three that do nothing are the least it can take.
        results["framework"] = measure_together(
            {"logdeck": empty_calls(client, url, 3), "stock": None, "floor": None},
            warmup={"logdeck": warmup},
            repeat=max(repeat * 10, 30),
        )
        thread = f"long-{run}"
        ids = {
            "logdeck": fill_logdeck_thread("bench-langgraph", thread, THREAD_CHECKPOINTS),
            "stock": fill_thread(postgres, thread, THREAD_CHECKPOINTS),
            "floor": fill_thread(sqlite, thread, THREAD_CHECKPOINTS),
        }
        savers = {"logdeck": logdeck, "stock": postgres, "floor": sqlite}
        for name, position in (("newest", None), ("deep", 100)):
            results[name] = measure_together(
                {
                    side: list_call(
                        saver, thread, None if position is None else ids[side][position]
                    )
                    for side, saver in savers.items()
                },
                warmup={side: warmup for side in savers},
                repeat=repeat,
            )
    return results
