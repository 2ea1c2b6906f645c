"""Console pages for agents: the list with each agent's recent activity, and one agent."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.http import Http404, HttpResponse
from django.utils import timezone

from agents.models import Agent
from agents.selectors import agent_get, agent_list
from config.console import (
    HtmxHttpRequest,
    activity_charts,
    cached_stats,
    console_view,
    htmx_target,
    load_more_url,
    pretty_json,
    render_page,
)
from config.errors import InvalidInput, NotFound
from config.keyset import Page, keyset_page
from memories.selectors import memory_list
from sessions_app.selectors import (
    SESSION_SORTS,
    SessionFilters,
    activity_stats,
    agent_activity,
    session_list,
    tool_failure_leaders,
)

VIEW_AGENTS = "agents.view_agent"
AGENT_PAGE = 50
ACTIVITY_DAYS = 30


def _since(days: int) -> dt.datetime:
    start = timezone.localtime() - dt.timedelta(days=days - 1)
    return start.replace(hour=0, minute=0, second=0, microsecond=0)


@console_view(VIEW_AGENTS)
def agent_list_view(request: HtmxHttpRequest) -> HttpResponse:
    """Agents by name with their sessions, messages and error rate over the last 30 days."""
    try:
        page: Page[Agent] = keyset_page(
            agent_list(),
            ordering=("name", "id"),
            cursor=request.GET.get("cursor") or None,
            size=AGENT_PAGE,
        )
    except InvalidInput as exc:
        raise Http404(exc.message) from None
    ids = [agent.pk for agent in page.items]
    activity, as_of = cached_stats(
        "console:agent-activity:" + hashlib.sha256(repr(ids).encode()).hexdigest(),
        lambda: agent_activity(agent_ids=ids, since=_since(ACTIVITY_DAYS).date()),
    )
    rows = []
    for agent in page.items:
        numbers = activity.get(
            agent.pk, {"sessions": 0, "messages": 0, "tool_calls": 0, "tool_errors": 0}
        )
        calls = numbers["tool_calls"]
        rate = round(numbers["tool_errors"] / calls * 100, 1) if calls else None
        rows.append({"agent": agent, **numbers, "error_rate": rate})
    more_url = load_more_url(request, page.next_cursor)
    context = {"rows": rows, "more_url": more_url, "days": ACTIVITY_DAYS, "as_of": as_of}
    fragment = "rows" if htmx_target(request) == "load-more" else None
    return render_page(request, "agents/agent_list.html", context, fragment=fragment)


@console_view(VIEW_AGENTS)
def agent_detail(request: HtmxHttpRequest, agent_id: int) -> HttpResponse:
    """One agent: its configuration, totals, 30 days of charts, failing tools, latest sessions."""
    try:
        agent = agent_get(ref=agent_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    (stats, leaders), as_of = cached_stats(
        f"console:agent:{agent.pk}",
        lambda: (
            activity_stats(agent=agent.pk, days=ACTIVITY_DAYS),
            tool_failure_leaders(since=_since(ACTIVITY_DAYS), agent=agent.pk),
        ),
    )
    config_json, _ = pretty_json(agent.config, limit=50_000)
    context = {
        "agent": agent,
        "stats": stats,
        **activity_charts(stats),
        "leaders": leaders,
        "as_of": as_of,
        "latest": list(
            session_list(SessionFilters(agent=agent.pk))
            .as_rows()
            .order_by(*SESSION_SORTS["newest"])[:10]
        ),
        "memories": list(memory_list(agent=agent.pk)[:10]),
        "config_json": config_json,
    }
    return render_page(request, "agents/agent_detail.html", context)
