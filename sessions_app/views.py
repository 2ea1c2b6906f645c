"""Console pages for what happened: the overview, the session browser, transcripts, tool calls
and the tool-call error groups. One function view per page; htmx requests get a partial."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Window
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from agents.selectors import agent_choices
from config.console import (
    CappedCount,
    HtmxHttpRequest,
    RowUrl,
    activity_charts,
    bar_chart,
    cached_stats,
    console_view,
    form_values,
    htmx_target,
    load_more_url,
    pretty_json,
    query_choice,
    query_date,
    query_int,
    render_filtered_list,
    render_page,
    sparkline,
)
from config.errors import InvalidInput, NotFound
from config.keyset import Page, keyset_page
from config.times import iso_time
from memories.selectors import memory_list
from sessions_app.models import Message, Session, ToolCall
from sessions_app.selectors import (
    SESSION_SORTS,
    SessionFilters,
    activity_stats,
    count_capped,
    daily_counts,
    session_checkpoints,
    session_export_chunks,
    session_get,
    session_list,
    session_transcript,
    text_is_common,
    tool_call_get,
    tool_error_group_calls,
    tool_error_group_page,
    tool_error_group_summary,
    tool_error_groups,
    tool_failure_leaders,
)
from sessions_app.thread_selectors import checkpoint_state_json

VIEW_SESSIONS = "sessions_app.view_session"
SESSION_PAGE = 50
COUNT_CAP = 1000
TRANSCRIPT_PAGE = 100
CALL_PAGE = 50
ERROR_GROUP_PAGE = 50
# The session browser's filter form, as its template reads it (`q.<name>`).
SESSION_FORM = (
    "q",
    "agent",
    "status",
    "has_errors",
    "user",
    "platform",
    "created_after",
    "created_before",
    "meta_key",
    "meta_value",
)
ERROR_WINDOWS = {"7d": 7, "30d": 30, "90d": 90}


def _window_start(days: int) -> dt.datetime:
    start = timezone.localtime() - dt.timedelta(days=days - 1)
    return start.replace(hour=0, minute=0, second=0, microsecond=0)


# --- Overview -----------------------------------------------------------------------------------


@console_view(VIEW_SESSIONS)
def overview(request: HtmxHttpRequest) -> HttpResponse:
    """Totals, 30 days of messages and failures, the tools failing most, the latest sessions."""
    (stats, leaders), as_of = cached_stats(
        "console:overview",
        lambda: (activity_stats(days=30), tool_failure_leaders(since=_window_start(30))),
    )
    context = {
        "stats": stats,
        "as_of": as_of,
        **activity_charts(stats),
        "leaders": leaders,
        "latest": list(session_list().as_rows().order_by(*SESSION_SORTS["newest"])[:10]),
    }
    return render_page(request, "sessions_app/overview.html", context)


# --- Session browser ----------------------------------------------------------------------------


def _session_filters(request: HtmxHttpRequest) -> SessionFilters:
    has_errors = request.GET.get("has_errors", "").strip()
    if has_errors not in ("", "0", "1"):
        raise InvalidInput("has_errors must be 1 or 0.", field="has_errors")
    return SessionFilters(
        agent=query_int(request, "agent"),
        user=query_int(request, "user"),
        platform=request.GET.get("platform", "").strip(),
        status=query_choice(request, "status", ("", "active", "finished"), ""),
        created_after=query_date(request, "created_after"),
        created_before=query_date(request, "created_before", end_of_day=True),
        has_errors={"": None, "1": True, "0": False}[has_errors],
        q=request.GET.get("q", "").strip()[:200],
        metadata_key=request.GET.get("meta_key", "").strip(),
        metadata_value=request.GET.get("meta_value", "").strip(),
    )


@console_view(VIEW_SESSIONS)
def session_list_view(request: HtmxHttpRequest) -> HttpResponse:
    """Sessions filtered and sorted as the query string says, 50 at a time by keyset."""
    error = None
    page: Page[dict[str, Any]] = Page(items=[], next_cursor=None)
    total: CappedCount | None = None
    sort = "newest"
    try:
        filters = _session_filters(request)
        sort = query_choice(request, "sort", tuple(SESSION_SORTS), "newest")
        common = text_is_common(filters.q)
        matching = session_list(replace(filters, q_common=common))
        sessions = matching.as_rows()
        cursor = request.GET.get("cursor") or None
        # A text search finds every matching session before it can sort them, so the first page
        # counts them in the same query; a separate count would search the messages again. A
        # common word is tested session by session until the page is full: it counts no further.
        count_inline = bool(filters.q) and cursor is None and not common
        listed = sessions.annotate(matches=Window(Count("pk"))) if count_inline else sessions
        page = keyset_page(listed, ordering=SESSION_SORTS[sort], cursor=cursor, size=SESSION_PAGE)
        if count_inline:
            matches = page.items[0]["matches"] if page.items else 0
            total = CappedCount(min(matches, COUNT_CAP + 1), COUNT_CAP)
        elif common and cursor is None:
            total = CappedCount(len(page.items) + page.has_more, SESSION_PAGE)
        elif cursor is None:
            # Counted on the sessions alone: the rows' agent and user columns would join both.
            total = CappedCount(count_capped(matching, cap=COUNT_CAP), COUNT_CAP)
    except InvalidInput as exc:
        error = exc.message
    more_url = load_more_url(request, page.next_cursor)
    target = htmx_target(request)
    fragment = {"load-more": "rows", "results": "results"}.get(target)
    context = {
        "page": page,
        "sessions": page.items,
        "total": total,
        "error": error,
        "more_url": more_url,
        "agents": [] if fragment else agent_choices(),
        "sort": sort,
        "sorts": [("newest", "Newest"), ("messages", "Most messages"), ("errors", "Most errors")],
        "q": form_values(request, SESSION_FORM),
        "filtered": any(v for k, v in request.GET.items() if k not in ("sort", "cursor")),
        "continued": bool(request.GET.get("cursor")),
    }
    return render_filtered_list(
        request, "sessions_app/session_list.html", context, fragment=fragment, error=error
    )


# --- Transcript ---------------------------------------------------------------------------------


def _get_session(session_id: Any) -> Session:
    try:
        return session_get(session_id=session_id)
    except NotFound as exc:
        raise Http404(exc.message) from None


def _link_or_text(url: str) -> str | None:
    """Only web links become links; `javascript:` and the like stay text."""
    return url if url.lower().startswith(("https://", "http://")) else None


@console_view(VIEW_SESSIONS)
def session_detail(request: HtmxHttpRequest, session_id: Any) -> HttpResponse:
    """A transcript page by page (`after_seq`), followed live while the session is active."""
    session = _get_session(session_id)
    try:
        after_seq = query_int(request, "after_seq")
    except InvalidInput as exc:
        raise Http404(exc.message) from None
    after_seq = -1 if after_seq is None or after_seq < -1 else after_seq
    messages = session_transcript(session=session, after_seq=after_seq, limit=TRANSCRIPT_PAGE + 1)
    has_more = len(messages) > TRANSCRIPT_PAGE
    messages = messages[:TRANSCRIPT_PAGE]
    last_seq = messages[-1]["seq"] if messages else after_seq
    target = htmx_target(request)
    following = target == "transcript-tail" and request.GET.get("follow") == "1"
    if following and not messages and session.is_active:
        return HttpResponse(status=204)  # nothing new yet: htmx keeps the poller as it is
    for message in messages:
        message["media_link"] = _link_or_text(message["media_url"])
        message["has_failed_call"] = any(call["is_error"] for call in message["calls"])
    context = {
        "session": session,
        "messages": messages,
        "has_more": has_more,
        "last_seq": last_seq,
        "after_seq": after_seq,
        "following": following,
    }
    if target == "transcript-tail":
        return render_page(request, "sessions_app/session_detail.html", context, fragment="page")
    metadata, _ = pretty_json(session.metadata, limit=20_000)
    checkpoints = session_checkpoints(session=session, limit=10)
    for checkpoint in checkpoints:
        checkpoint.pretty, checkpoint.cut = pretty_json(checkpoint.data, limit=20_000)
        if checkpoint.checkpoint_id:
            # A framework's checkpoint: its step, source and parent from its metadata, and its
            # state as JSON where it decodes here, its size otherwise.
            saved = checkpoint.metadata if isinstance(checkpoint.metadata, dict) else {}
            checkpoint.step = saved.get("step")
            checkpoint.source = saved.get("source", "")
            checkpoint.metadata_json, _ = pretty_json(checkpoint.metadata, limit=20_000)
            state = checkpoint_state_json(checkpoint) if checkpoint.state is not None else None
            checkpoint.state_json = None
            if state is not None:
                checkpoint.state_json, checkpoint.cut = pretty_json(state, limit=20_000)
    context |= {
        "metadata_json": metadata,
        "checkpoints": checkpoints,
        "memories": list(memory_list(session=session)[:20]),
    }
    return render_page(request, "sessions_app/session_detail.html", context)


@console_view(VIEW_SESSIONS)
def tool_call_detail(request: HtmxHttpRequest, call_id: int) -> HttpResponse:
    """One tool call with its payloads pretty-printed: loaded only when a call is expanded."""
    try:
        call = tool_call_get(call_id=call_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    input_json, input_cut = pretty_json(call.input)
    output_json, output_cut = pretty_json(call.output)
    approval_json, _ = pretty_json(call.approval, limit=20_000)
    context = {
        "call": call,
        "input_json": input_json,
        "input_cut": input_cut,
        "output_json": output_json,
        "output_cut": output_cut,
        "approval_json": approval_json if call.approval is not None else None,
    }
    return render_page(request, "sessions_app/tool_call_detail.html", context, fragment="payload")


# --- Export -------------------------------------------------------------------------------------


def _message_dict(message: Message) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "role": message.role,
        "content_type": message.content_type,
        "text_content": message.text_content,
        "media_url": message.media_url,
        "model": message.model,
        "input_tokens": message.input_tokens,
        "output_tokens": message.output_tokens,
        "raw": message.raw,
        "created_at": iso_time(message.created_at),
        "tool_calls": [_call_dict(call) for call in message.tool_calls.all()],
    }


def _call_dict(call: ToolCall) -> dict[str, Any]:
    return {
        "call_id": call.call_id,
        "tool_name": call.tool_name,
        "input": call.input,
        "output": call.output,
        "state": call.state,
        "is_error": call.is_error,
        "error_message": call.error_message,
        "approval": call.approval,
        "duration_ms": call.duration_ms,
        "created_at": iso_time(call.created_at),
        "finished_at": iso_time(call.finished_at) if call.finished_at else None,
    }


def _session_dict(session: Session) -> dict[str, Any]:
    return {
        "id": str(session.pk),
        "name": session.name,
        "agent": session.agent.name,
        "user": session.user.email if session.user else None,
        "platform": session.platform,
        "metadata": session.metadata,
        "created_at": iso_time(session.created_at),
        "finished_at": iso_time(session.finished_at) if session.finished_at else None,
        "message_count": session.message_count,
        "tool_call_count": session.tool_call_count,
        "error_count": session.error_count,
    }


def _json_export(session: Session) -> Iterator[str]:
    head = json.dumps(_session_dict(session), ensure_ascii=False, indent=2)
    yield head[:-2] + ',\n  "messages": ['
    first = True
    for chunk in session_export_chunks(session=session):
        for message in chunk:
            yield ("\n    " if first else ",\n    ") + json.dumps(
                _message_dict(message), ensure_ascii=False, default=str
            )
            first = False
    yield "\n  ]\n}\n"


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks inside `text`."""
    run = best = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    return "`" * max(3, best + 1)


def _markdown_export(session: Session) -> Iterator[str]:
    title = session.name or str(session.pk)
    yield f"# {title}\n\n"
    yield f"- Session: `{session.pk}`\n- Agent: {session.agent.name}\n"
    if session.user:
        yield f"- User: {session.user.email}\n"
    yield f"- Started: {iso_time(session.created_at)}\n"
    yield f"- Finished: {iso_time(session.finished_at) if session.finished_at else 'active'}\n"
    yield (
        f"- Messages: {session.message_count}, tool calls: {session.tool_call_count}, "
        f"failed: {session.error_count}\n\n"
    )
    for chunk in session_export_chunks(session=session):
        for message in chunk:
            yield f"## #{message.seq} {message.role} · {iso_time(message.created_at)}\n\n"
            if message.text_content:
                fence = _fence(message.text_content)
                yield f"{fence}text\n{message.text_content}\n{fence}\n\n"
            for call in message.tool_calls.all():
                status = "FAILED" if call.is_error else call.state
                yield f"### Tool call `{call.tool_name}` ({status})\n\n"
                if call.error_message:
                    yield f"Error: {call.error_message}\n\n"
                for label, value in (("Input", call.input), ("Output", call.output)):
                    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
                    fence = _fence(text)
                    yield f"{label}:\n\n{fence}json\n{text}\n{fence}\n\n"


@console_view(VIEW_SESSIONS)
def session_export(request: HtmxHttpRequest, session_id: Any, fmt: str) -> HttpResponse:
    """The whole session as a JSON or Markdown download, streamed chunk by chunk."""
    session = _get_session(session_id)
    if fmt == "json":
        body, content_type = _json_export(session), "application/json"
    else:
        body, content_type = _markdown_export(session), "text/markdown; charset=utf-8"
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="session-{session.pk}.{fmt}"'
    return response


# --- Tool-call error groups ---------------------------------------------------------------------


def _group_url(base: str, tool_name: str, fingerprint: str) -> str:
    """A group's page: `base` is the reversed URL of `console:error-group` (once per list)."""
    return f"{base}?{urlencode({'tool': tool_name, 'fingerprint': fingerprint})}"


@console_view(VIEW_SESSIONS)
def error_groups(request: HtmxHttpRequest) -> HttpResponse:
    """Failures grouped by tool and fingerprint, biggest first, each with a daily sparkline,
    50 groups at a time by keyset: one query over the error-group rollup."""
    error = None
    page: Page[dict[str, Any]] = Page(items=[], next_cursor=None)
    since_key = "30d"
    try:
        agent = query_int(request, "agent")
        tool = request.GET.get("tool", "").strip()
        since_key = query_choice(request, "since", (*ERROR_WINDOWS, "all"), "30d")
    except InvalidInput as exc:
        error, agent, tool = exc.message, None, ""
    days = ERROR_WINDOWS.get(since_key, 30)
    start = _window_start(days)
    if error is None:
        groups = tool_error_groups(
            agent=agent,
            tool_name=tool,
            since=start if since_key != "all" else None,
            daily_from=start.date(),
            days=days,
        )
        try:
            page = tool_error_group_page(
                groups, cursor=request.GET.get("cursor") or None, size=ERROR_GROUP_PAGE
            )
        except InvalidInput as exc:
            error = exc.message
    group_page = reverse("console:error-group")
    for group in page.items:
        group["spark"] = sparkline(daily_counts(group, days))
        group["url"] = _group_url(group_page, group["tool_name"], group["error_fingerprint"])
    target = htmx_target(request)
    fragment = {"load-more": "rows", "results": "results"}.get(target)
    context = {
        "groups": page.items,
        "more_url": load_more_url(request, page.next_cursor),
        "error": error,
        "since": since_key,
        "days": days,
        "windows": [("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("all", "All time")],
        "agents": [] if fragment else agent_choices(),
        "q": form_values(request, ("agent", "tool")),
    }
    return render_filtered_list(
        request, "sessions_app/error_groups.html", context, fragment=fragment, error=error
    )


@console_view(VIEW_SESSIONS)
def error_group(request: HtmxHttpRequest) -> HttpResponse:
    """One error group: its numbers, 30 days of failures, and its calls, newest first, each
    linking to the exact message in its transcript."""
    tool = request.GET.get("tool", "").strip()
    fingerprint = request.GET.get("fingerprint", "")
    if not tool:
        raise Http404("Name a tool: ?tool=<name>&fingerprint=<fingerprint>.")
    try:
        page: Page[dict[str, Any]] = keyset_page(
            tool_error_group_calls(tool_name=tool, fingerprint=fingerprint),
            ordering=("-created_at", "-id"),
            cursor=request.GET.get("cursor") or None,
            size=CALL_PAGE,
        )
    except InvalidInput as exc:
        raise Http404(exc.message) from None
    session_url = RowUrl("console:session-detail")
    for call in page.items:
        seq = call["message_seq"]
        call["session_url"] = call["transcript_url"] = session_url(call["session_id"])
        if seq is not None:
            # Start the page a few messages early so the question that led to the call shows.
            call["transcript_url"] += f"?after_seq={max(seq - 3, -1)}#m-{seq}"
    more_url = load_more_url(request, page.next_cursor)
    context: dict[str, Any] = {"tool": tool, "fingerprint": fingerprint, "calls": page.items}
    context["more_url"] = more_url
    if htmx_target(request) == "load-more":
        return render_page(request, "sessions_app/error_group.html", context, fragment="rows")
    start = _window_start(30).date()
    summary = tool_error_group_summary(
        tool_name=tool, fingerprint=fingerprint, daily_from=start, days=30
    )
    if summary is None and not page.items:
        raise Http404("No failures in this group.")
    counts = daily_counts(summary, 30) if summary else [0] * 30
    context |= {
        "summary": summary,
        "chart": bar_chart(
            [(start + dt.timedelta(days=i), n) for i, n in enumerate(counts)], what="failures"
        ),
    }
    return render_page(request, "sessions_app/error_group.html", context)
