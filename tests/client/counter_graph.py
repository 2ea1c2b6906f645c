"""A small deterministic LangGraph graph for the checkpointer tests: count, ask for approval
(an interrupt), then finish with the answer. Run as a script it resumes a thread on
LogdeckSaver in a process of its own and prints the final state as JSON."""

from __future__ import annotations

import json
import operator
import sys
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt


class State(TypedDict):
    count: int
    log: Annotated[list[str], operator.add]
    answer: str


def count(state: State) -> dict[str, Any]:
    return {"count": state["count"] + 1, "log": [f"count {state['count'] + 1}"]}


def double(state: State) -> dict[str, Any]:
    return {"count": state["count"] * 2, "log": [f"double {state['count'] * 2}"]}


def review(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "approve?", "count": state["count"]})
    return {"answer": answer, "log": [f"review {answer}"]}


def finish(state: State) -> dict[str, Any]:
    return {"count": state["count"] + 100, "log": [f"finish {state['answer']}"]}


def build(checkpointer: Any) -> Any:
    graph = StateGraph(State)
    for name, node in (
        ("count", count),
        ("double", double),
        ("review", review),
        ("finish", finish),
    ):
        graph.add_node(name, node)
    graph.add_edge(START, "count")
    graph.add_edge("count", "double")
    graph.add_edge("double", "review")
    graph.add_edge("review", "finish")
    graph.add_edge("finish", END)
    return graph.compile(checkpointer=checkpointer)


if __name__ == "__main__":
    from logdeck_client.langgraph import LogdeckSaver

    agent, thread_id, answer = sys.argv[1:4]
    saver = LogdeckSaver(agent=agent)  # LOGDECK_URL and LOGDECK_API_KEY from the environment
    graph = build(saver)
    result = graph.invoke(Command(resume=answer), {"configurable": {"thread_id": thread_id}})
    print(json.dumps(result))
