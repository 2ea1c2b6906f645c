"""LogdeckSession, the Agents SDK's Session over a live server, judged against the SDK's own
SQLiteSession: a scripted Runner conversation and a randomized add/pop/clear/get sequence
give the same items; the items are also ordinary messages and tool calls with exact counters.

The SDK runs in a process of its own (`agents_run.py`): its package is called `agents`, as
Logdeck's Django app is, which is how an agent runtime meets Logdeck anyway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.db.models import Count, Q, Sum

from sessions_app.models import DailyActivity, Message, Session, ToolCall, ToolStateCount
from sessions_app.selectors import tool_error_groups
from tests.client.conftest import LiveApi

SCRIPT = Path(__file__).with_name("agents_run.py")


def run_agents(live_api: LiveApi, tmp_path: Path, *args: str) -> Any:
    """The SDK script's JSON answer, run outside the project's folder."""
    env = {**os.environ, "LOGDECK_URL": live_api.url, "LOGDECK_API_KEY": live_api.key}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_exact(session: Session) -> None:
    """Counters and rollups agree with the rows, and seq is gapless."""
    session.refresh_from_db()
    seqs = list(
        Message.objects.filter(session=session).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(len(seqs)))
    calls = ToolCall.objects.filter(session=session).aggregate(
        n=Count("pk"), e=Count("pk", filter=Q(is_error=True))
    )
    assert (session.message_count, session.tool_call_count, session.error_count) == (
        len(seqs),
        calls["n"],
        calls["e"],
    )
    agent = session.agent_id
    activity = DailyActivity.objects.filter(agent=agent).aggregate(
        m=Sum("messages"), t=Sum("tool_calls"), e=Sum("tool_errors")
    )
    rows = ToolCall.objects.filter(agent=agent)
    assert (activity["m"] or 0) == Message.objects.filter(agent=agent).count()
    assert (activity["t"] or 0, activity["e"] or 0) == (
        rows.count(),
        rows.filter(is_error=True).count(),
    )
    by_state = dict(
        ToolStateCount.objects.filter(agent=agent, calls__gt=0).values_list("state", "calls")
    )
    assert by_state == dict(rows.values("state").annotate(n=Count("pk")).values_list("state", "n"))


def test_a_scripted_run_gives_the_same_items_as_sqlitesession(
    live_api: LiveApi, tmp_path: Path
) -> None:
    out = run_agents(live_api, tmp_path, "scripted", "conversation-1", "support")
    assert out["answers"] == out["reference_answers"]
    assert out["answers"][1] == "You are welcome."
    assert out["items"] == out["reference_items"] and len(out["items"]) == 8
    assert out["tail"] == out["reference_tail"] == out["items"][-3:]

    session = Session.objects.get(agent__name="support", external_key="conversation-1")
    assert_exact(session)
    rows = Message.objects.filter(session=session).order_by("seq")
    assert list(rows.values_list("role", "content_type")) == [
        ("user", "text"),
        ("assistant", "tool_use"),
        ("assistant", "tool_use"),
        ("tool", "tool_result"),
        ("tool", "tool_result"),
        ("assistant", "text"),
        ("user", "text"),
        ("assistant", "text"),
    ]
    assert rows[0].text_content == "Where is order 1234? Please charge it."
    lookup = ToolCall.objects.get(session=session, call_id="call_lookup")
    assert (lookup.tool_name, lookup.input, lookup.state, lookup.is_error) == (
        "lookup_order",
        {"order": 1234},
        "completed",
        False,
    )
    assert lookup.output == "{'order': 1234, 'status': 'shipped'}"  # as the SDK gave the model
    charge = ToolCall.objects.get(session=session, call_id="call_charge")
    assert (charge.tool_name, charge.state, charge.is_error) == ("charge_card", "failed", True)
    assert charge.input == {"order": 1234, "amount": 42.5}
    assert charge.error_message.startswith("An error occurred while running the tool")
    groups = list(tool_error_groups(tool_name="charge_card"))
    assert [(g["tool_name"], g["count"]) for g in groups] == [("charge_card", 1)]


def test_a_random_sequence_of_calls_gives_the_same_results_as_sqlitesession(
    live_api: LiveApi, tmp_path: Path
) -> None:
    outcomes = run_agents(live_api, tmp_path, "random", "15", "random", "random")
    for step, (action, ours, theirs) in enumerate(outcomes):
        assert ours == theirs, (step, action)
    actions = {action.split()[0] for action, *_ in outcomes}
    assert actions >= {"add", "pop", "clear", "get"}
    assert any(action == "pop" and ours is not None for action, ours, _ in outcomes)
    assert_exact(Session.objects.get(agent__name="random", external_key="random"))
