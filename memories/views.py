"""Console pages for memories: browse by agent, user and session; read one."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import Http404, HttpResponse

from agents.selectors import agent_choices
from config.console import (
    HtmxHttpRequest,
    console_view,
    form_values,
    htmx_target,
    load_more_url,
    pretty_json,
    query_int,
    render_filtered_list,
    render_page,
)
from config.errors import InvalidInput
from config.keyset import Page, keyset_page
from memories.models import Memory
from memories.selectors import memory_get, memory_list

VIEW_MEMORIES = "memories.view_memory"
MEMORY_PAGE = 50


def _session_param(raw: str) -> uuid.UUID | None:
    if not raw.strip():
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise InvalidInput("session must be a session id (a UUID).", field="session") from None


@console_view(VIEW_MEMORIES)
def memory_list_view(request: HtmxHttpRequest) -> HttpResponse:
    """Memories, most recently changed first, filtered by agent, user and session."""
    error = None
    page: Page[Memory] = Page(items=[], next_cursor=None)
    try:
        memories = memory_list(
            agent=query_int(request, "agent"),
            user=query_int(request, "user"),
            session=_session_param(request.GET.get("session", "")),
        ).defer("content", "metadata")
        page = keyset_page(
            memories,
            ordering=("-updated_at", "-id"),
            cursor=request.GET.get("cursor") or None,
            size=MEMORY_PAGE,
        )
    except InvalidInput as exc:
        error = exc.message
    more_url = load_more_url(request, page.next_cursor)
    target = htmx_target(request)
    fragment = {"load-more": "rows", "results": "results"}.get(target)
    context = {
        "memories": page.items,
        "more_url": more_url,
        "error": error,
        "agents": [] if fragment else agent_choices(),
        "q": form_values(request, ("agent", "user", "session")),
    }
    return render_filtered_list(
        request, "memories/memory_list.html", context, fragment=fragment, error=error
    )


@console_view(VIEW_MEMORIES)
def memory_detail(request: HtmxHttpRequest, memory_id: Any) -> HttpResponse:
    """One memory: its scope, content and metadata."""
    memory = memory_get(memory_id=memory_id)
    if memory is None:
        raise Http404("No such memory.")
    metadata, _ = pretty_json(memory.metadata, limit=50_000)
    return render_page(
        request, "memories/memory_detail.html", {"memory": memory, "metadata_json": metadata}
    )
