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
