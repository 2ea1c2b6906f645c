"""An OpenAI Agents SDK runtime, run as a script in a process of its own: the SDK's package is
called `agents`, like Logdeck's Django app, so it cannot be imported beside the project.

`python agents_run.py scripted` runs a two-turn conversation with a scripted fake model (no
network) and two tools, one that succeeds and one that fails, on LogdeckSession and on the
SDK's own SQLiteSession; `python agents_run.py random SEED` runs a randomized sequence of
add/pop/clear/get calls on both. Each prints what the test compares, as JSON. LOGDECK_URL and
LOGDECK_API_KEY say where Logdeck is."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator
from typing import Any

from agents.models.interface import Model
from logdeck_client import AsyncLogdeck
from logdeck_client.openai_agents import LogdeckSession
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from agents import Agent, ModelResponse, RunConfig, Runner, SQLiteSession, Usage, function_tool


def _say(message_id: str, text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=message_id,
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
    )


def _call(call_id: str, name: str, arguments: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{call_id}",
        call_id=call_id,
        name=name,
        arguments=arguments,
        type="function_call",
        status="completed",
    )


SCRIPT = [
    # Turn 1: look the order up and charge it, in one response.
    [
        _call("call_lookup", "lookup_order", '{"order": 1234}'),
        _call("call_charge", "charge_card", '{"order": 1234, "amount": 42.5}'),
    ],
    [_say("msg_1", "Order 1234 ships today, but the card <b>could not</b> be charged.")],
    # Turn 2.
    [_say("msg_2", "You are welcome.")],
]
TURNS = ["Where is order 1234? Please charge it.", "Thanks!"]


class ScriptedModel(Model):
    """Answers each call with the next response of the script."""

    def __init__(self, script: list[list[Any]]) -> None:
        self.script = list(script)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return ModelResponse(output=self.script.pop(0), usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the scripted model does not stream")


@function_tool
def lookup_order(order: int) -> dict[str, Any]:
    """Look an order up."""
    return {"order": order, "status": "shipped"}


@function_tool
def charge_card(order: int, amount: float) -> str:
    """Charge the card of an order."""
    raise RuntimeError(f"Card declined for order {order}")


async def converse(session: Any) -> list[str]:
    """The two-turn conversation on `session`; the final answer of each turn."""
    agent = Agent(
        name="support",
        instructions="Help with orders.",
        model=ScriptedModel(SCRIPT),
        tools=[lookup_order, charge_card],
    )
    answers = []
    for turn in TURNS:
        result = await Runner.run(
            agent, turn, session=session, run_config=RunConfig(tracing_disabled=True)
        )
        answers.append(result.final_output)
    return answers


async def scripted(session_id: str, agent: str) -> dict[str, Any]:
    async with AsyncLogdeck() as client:
        logdeck = LogdeckSession(session_id, agent=agent, client=client)
        reference = SQLiteSession(session_id)
        return {
            "answers": await converse(logdeck),
            "reference_answers": await converse(reference),
            "items": await logdeck.get_items(),
            "reference_items": await reference.get_items(),
            "tail": await logdeck.get_items(3),
            "reference_tail": await reference.get_items(3),
        }


def random_item(rng: random.Random, n: int) -> dict[str, Any]:
    kind = rng.choice(["user", "assistant", "call", "output", "reasoning"])
    if kind == "user":
        return {"role": "user", "content": f"question {n} \u00fc <script>"}
    if kind == "assistant":
        text = {"type": "output_text", "text": f"answer {n}", "annotations": []}
        return {"type": "message", "role": "assistant", "id": f"msg_{n}", "content": [text]}
    if kind == "call":
        arguments = json.dumps({"n": n})
        return {
            "type": "function_call",
            "call_id": f"call_{n}",
            "name": "tool",
            "arguments": arguments,
        }
    if kind == "output":
        return {"type": "function_call_output", "call_id": f"call_{n - 1}", "output": f"out {n}"}
    summary = [{"type": "summary_text", "text": f"think {n}"}]
    return {"type": "reasoning", "id": f"rs_{n}", "summary": summary}


async def randomized(seed: int, session_id: str, agent: str) -> list[list[Any]]:
    """[action, LogdeckSession's result, SQLiteSession's result] for each call made."""
    rng = random.Random(seed)
    outcomes: list[list[Any]] = []
    async with AsyncLogdeck() as client:
        logdeck = LogdeckSession(session_id, agent=agent, client=client)
        reference = SQLiteSession(session_id)
        n = 0
        for _step in range(60):
            action = rng.choices(["add", "pop", "clear", "get"], weights=[6, 3, 1, 3])[0]
            if _step == 30:
                action = "clear"  # at least once, mid-way, whatever the seed
            if action == "add":
                batch = []
                for _ in range(rng.randint(1, 3)):
                    n += 1
                    batch.append(random_item(rng, n))
                await logdeck.add_items(batch)
                await reference.add_items(batch)
                outcomes.append(["add", None, None])
            elif action == "pop":
                outcomes.append(["pop", await logdeck.pop_item(), await reference.pop_item()])
            elif action == "clear":
                await logdeck.clear_session()
                await reference.clear_session()
                outcomes.append(["clear", None, None])
            else:
                limit = rng.choice([None, 0, 1, 2, 5, 50])
                ours, theirs = await logdeck.get_items(limit), await reference.get_items(limit)
                outcomes.append([f"get {limit}", ours, theirs])
        outcomes.append(["final", await logdeck.get_items(), await reference.get_items()])
    return outcomes


if __name__ == "__main__":
    if sys.argv[1] == "scripted":
        result: Any = asyncio.run(scripted(sys.argv[2], sys.argv[3]))
    else:
        result = asyncio.run(randomized(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    print(json.dumps(result))
