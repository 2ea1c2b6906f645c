"""The admin of memories: every page at 1 and 1,000 rows, scope constraints as form errors."""

from __future__ import annotations

import pytest
from django.test import Client

from memories.models import Memory
from tests.admin_pages import PAGES, AdminCase, get_counting, unbounded_counts
from tests.factories import AgentFactory, MemoryFactory, SessionFactory, UserFactory

BULK = 999


def _memory() -> tuple[Memory, AdminCase]:
    memory = MemoryFactory(name="favourite-colour", metadata={"z": 1, "a": 2})
    return memory, AdminCase(Memory, "q=favourite-colour", "scope=agent")


def test_it_serves_every_page_with_the_same_queries_at_1_and_1000_rows(
    superuser_client: Client,
) -> None:
    memory, case = _memory()
    change_url = case.url("change", memory)
    first: dict[str, int] = {}
    for page in PAGES:
        superuser_client.get(case.url(page, memory))  # warm process caches (content types)
        status, queries, body = get_counting(superuser_client, case.url(page, memory))
        assert status == 200, (page, body[:500])
        assert unbounded_counts(queries) == [], page
        first[page] = len(queries)
        if page in ("changelist", "search", "filter"):
            assert change_url.encode() in body, f"{page} does not list the row"

    user = UserFactory()
    Memory.objects.bulk_create(
        Memory(name=f"bulk-{i}", agent=memory.agent, user=user, content="x" * 500)
        for i in range(BULK)
    )
    for page in PAGES:
        status, queries, _ = get_counting(superuser_client, case.url(page, memory))
        assert status == 200, page
        assert unbounded_counts(queries) == [], page
        assert len(queries) == first[page], (page, queries)
    assert max(first.values()) <= 8, first


@pytest.mark.parametrize("page", PAGES)
def test_it_shows_the_viewer_everything_but_add_and_delete(
    page: str, viewer_client: Client
) -> None:
    memory, case = _memory()
    status, _, _ = get_counting(viewer_client, case.url(page, memory))
    assert status == (403 if page in ("add", "delete") else 200)


def test_it_refuses_anonymous_and_unpermitted_staff(
    client: Client, outsider_client: Client
) -> None:
    memory, case = _memory()
    for page in PAGES:
        response = client.get(case.url(page, memory))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert outsider_client.get(case.url(page, memory)).status_code == 403


def _form(**fields: object) -> dict[str, object]:
    return {
        "name": "tone",
        "agent": "",
        "user": "",
        "session": "",
        "read_mode": "tool",
        "access": "read_write",
        "description": "",
        "content": "Formal.",
        "metadata": "{}",
    } | fields


def test_it_refuses_a_second_memory_of_a_name_in_one_scope(superuser_client: Client) -> None:
    agent = AgentFactory()
    MemoryFactory(name="tone", agent=agent, user=None)
    response = superuser_client.post("/admin/memories/memory/add/", _form(agent=agent.pk))
    assert response.status_code == 200
    assert b"A memory of this name already exists in this scope." in response.content
    assert Memory.objects.filter(name="tone").count() == 1

    # The same name in a global scope (no agent, no user) is a different memory, once.
    assert superuser_client.post("/admin/memories/memory/add/", _form()).status_code == 302
    again = superuser_client.post("/admin/memories/memory/add/", _form())
    assert again.status_code == 200
    assert b"A memory of this name already exists in this scope." in again.content
    assert Memory.objects.filter(name="tone").count() == 2


def test_it_refuses_a_session_of_another_agent(superuser_client: Client) -> None:
    agent, session = AgentFactory(), SessionFactory()
    response = superuser_client.post(
        "/admin/memories/memory/add/", _form(agent=agent.pk, source_session=session.pk)
    )
    assert response.status_code == 200
    assert b"The session belongs to another agent." in response.content
    assert not Memory.objects.exists()


def test_it_edits_metadata_as_pretty_json_and_refuses_invalid_json(
    superuser_client: Client,
) -> None:
    memory, case = _memory()
    url = case.url("change", memory)
    body = superuser_client.get(url).content.decode()
    assert "{\n  &quot;a&quot;: 2,\n  &quot;z&quot;: 1\n}" in body
    form = _form(name=memory.name, agent=memory.agent_id, metadata='{"a": }')
    response = superuser_client.post(url, form)
    assert response.status_code == 200 and b"Enter a valid JSON." in response.content
    memory.refresh_from_db()
    assert memory.metadata == {"z": 1, "a": 2}
    assert superuser_client.post(url, form | {"metadata": '{"a": 3}'}).status_code == 302
    memory.refresh_from_db()
    assert memory.metadata == {"a": 3}
