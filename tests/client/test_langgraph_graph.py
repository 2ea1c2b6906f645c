"""A real StateGraph on LogdeckSaver (sync methods, over HTTP): an interrupt, a resume in a new
process, and a replay from an earlier checkpoint give what LangGraph's InMemorySaver gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from logdeck_client import Logdeck
from logdeck_client.langgraph import LogdeckSaver

from sessions_app.models import Checkpoint, Session
from tests.client.conftest import LiveApi
from tests.client.counter_graph import build

ROOT = Path(__file__).resolve().parents[2]
START = {"count": 1, "log": [], "answer": ""}


def _history(graph: Any, config: dict) -> list[tuple[int, tuple[str, ...], dict]]:
    return [
        (snapshot.metadata["step"], snapshot.next, snapshot.values)
        for snapshot in graph.get_state_history(config)
    ]


def _replay(graph: Any, config: dict) -> dict:
    """Time travel: run again from the checkpoint taken before `double` ran."""
    before_double = next(s for s in graph.get_state_history(config) if s.next == ("double",))
    forked = graph.update_state(before_double.config, {"count": 10})
    graph.invoke(None, forked)  # runs double from the fork, stops at the interrupt again
    return graph.invoke(Command(resume="later"), config)


def test_it_interrupts_resumes_in_a_new_process_and_replays_as_in_memory(
    live_api: LiveApi,
) -> None:
    config = {"configurable": {"thread_id": "graph-thread"}}

    memory_graph = build(InMemorySaver())
    memory_first = memory_graph.invoke(START, config)
    memory_final = memory_graph.invoke(Command(resume="yes"), config)
    memory_history = _history(memory_graph, config)
    memory_replayed = _replay(memory_graph, config)

    client = Logdeck(live_api.url, live_api.key)
    graph = build(LogdeckSaver(agent="counter", client=client))
    first = graph.invoke(START, config)
    assert first["__interrupt__"][0].value == {"question": "approve?", "count": 4}
    assert first["__interrupt__"][0].value == memory_first["__interrupt__"][0].value
    assert {k: v for k, v in first.items() if k != "__interrupt__"} == {
        k: v for k, v in memory_first.items() if k != "__interrupt__"
    }

    # The resume runs in another process: nothing of this one's state is there.
    env = {**os.environ, "LOGDECK_URL": live_api.url, "LOGDECK_API_KEY": live_api.key}
    resumed = subprocess.run(
        [sys.executable, "-m", "tests.client.counter_graph", "counter", "graph-thread", "yes"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert (
        final
        == memory_final
        == {
            "count": 104,
            "log": ["count 2", "double 4", "review yes", "finish yes"],
            "answer": "yes",
        }
    )
    assert _history(graph, config) == memory_history
    assert graph.get_state(config).values == memory_final

    replayed = _replay(graph, config)
    assert replayed == memory_replayed
    assert replayed["count"] == 120 and replayed["log"][-1] == "finish later"
    assert _history(graph, config) == _history(memory_graph, config)

    # The thread is an ordinary session with its checkpoints.
    session = Session.objects.get(agent__name="counter", external_key="graph-thread")
    assert Checkpoint.objects.filter(session=session).count() == len(_history(graph, config))
    client.close()


def test_the_sync_methods_copy_prune_and_delete(live_api: LiveApi) -> None:
    from langgraph.checkpoint.conformance.test_utils import (
        generate_checkpoint,
        generate_config,
        generate_metadata,
    )

    with Logdeck(live_api.url, live_api.key) as client:
        saver = LogdeckSaver(agent="sync", client=client)
        parent = None
        for step, run in enumerate(["run-a", "run-a", "run-b"]):
            config = generate_config("source")
            if parent:
                config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
            parent = saver.put(
                config, generate_checkpoint(), generate_metadata(step=step, run_id=run), {}
            )
        saver.put_writes(parent, [("channel", {"value": 1})], "task-1")

        def ids(thread: str) -> list[int]:
            return [t.metadata["step"] for t in saver.list(generate_config(thread))]

        saver.copy_thread("source", "copy")
        assert ids("copy") == ids("source") == [2, 1, 0]
        assert saver.get_tuple(generate_config("copy")).pending_writes == [
            ("task-1", "channel", {"value": 1})
        ]
        saver.delete_for_runs(["run-a"])
        assert ids("source") == ids("copy") == [2]
        saver.put(generate_config("source"), generate_checkpoint(), generate_metadata(step=3), {})
        saver.prune(["source"], strategy="keep_latest")
        assert ids("source") == [3]
        saver.delete_thread("source")
        assert ids("source") == [] and saver.get_tuple(generate_config("source")) is None
        assert ids("copy") == [2]
