"""The admin of sessions, messages, tool calls and checkpoints: every page, at 1 and 1,000 rows."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F, Model
from django.test import Client
from django.utils import timezone

from memories.models import Memory
from sessions_app.models import Checkpoint, Message, Session, ToolCall
from sessions_app.services import checkpoint_save
from tests.admin_pages import PAGES, AdminCase, get_counting, unbounded_counts
from tests.factories import MemoryFactory, SessionFactory, conversation

BULK = 999  # with the first row: 1,000
MESSAGES = "/admin/sessions_app/message/"


def _session() -> Session:
    session = SessionFactory()
    conversation(session, turns=2, failing=1)
    session.refresh_from_db()
    return session


def one_session() -> Session:
    return _session()


def many_sessions(session: Session) -> None:
    now = timezone.now()
    Session.objects.bulk_create(
        Session(
            agent=session.agent,
            user=session.user,
            name=f"Bulk {i}",
            created_at=now - timedelta(seconds=i),
            last_activity_at=now,
        )
        for i in range(BULK)
    )


def one_message() -> Message:
    return Message.objects.filter(session=_session(), seq=0).get()  # "Question 0", a user message


def many_messages(message: Message) -> None:
    session = message.session
    Message.objects.bulk_create(
        Message(
            session=session,
            agent_id=session.agent_id,
            seq=session.message_count + i,
            role="assistant",
            text_content=f"Bulk answer {i}",
            raw={"i": i},
        )
        for i in range(BULK)
    )
    # Counters stay exact, as the services keep them.
    Session.objects.filter(pk=session.pk).update(message_count=F("message_count") + BULK)


def one_tool_call() -> ToolCall:
    return ToolCall.objects.filter(session=_session(), is_error=True).get()


def many_tool_calls(call: ToolCall) -> None:
    ToolCall.objects.bulk_create(
        ToolCall(
            session_id=call.session_id,
            agent_id=call.agent_id,
            tool_name="search",
            call_id=f"bulk_{i}",
            input={"q": i},
            output={"hits": []},
        )
        for i in range(BULK)
    )
    Session.objects.filter(pk=call.session_id).update(tool_call_count=F("tool_call_count") + BULK)


def one_checkpoint() -> Checkpoint:
    return checkpoint_save(session_id=_session().pk, type="plan", data={"step": 1})


def many_checkpoints(checkpoint: Checkpoint) -> None:
    Checkpoint.objects.bulk_create(
        Checkpoint(session_id=checkpoint.session_id, type="plan", data={"step": i})
        for i in range(BULK)
    )


def _cases() -> dict[str, Callable[[], tuple[Model, AdminCase, Callable[[Model], None]]]]:
    def session() -> tuple[Model, AdminCase, Callable[[Model], None]]:
        obj = one_session()
        return obj, AdminCase(Session, f"q={obj.pk}", "status=active"), many_sessions

    def message() -> tuple[Model, AdminCase, Callable[[Model], None]]:
        obj = one_message()
        return obj, AdminCase(Message, "q=Question", "role__exact=user"), many_messages

    def tool_call() -> tuple[Model, AdminCase, Callable[[Model], None]]:
        obj = one_tool_call()
        return obj, AdminCase(ToolCall, "q=lookup_order", "is_error__exact=1"), many_tool_calls

    def checkpoint() -> tuple[Model, AdminCase, Callable[[Model], None]]:
        obj = one_checkpoint()
        return (
            obj,
            AdminCase(Checkpoint, f"q={obj.session_id}", f"session={obj.session_id}"),
            many_checkpoints,
        )

    return {
        "session": session,
        "message": message,
        "tool_call": tool_call,
        "checkpoint": checkpoint,
    }


CASES = _cases()


@pytest.mark.parametrize("name", CASES)
def test_it_serves_every_page_with_the_same_queries_at_1_and_1000_rows(
    name: str, superuser_client: Client
) -> None:
    obj, case, add_many = CASES[name]()
    change_url = case.url("change", obj)

    first: dict[str, int] = {}
    for page in PAGES:
        superuser_client.get(case.url(page, obj))  # warm process caches (content types)
        status, queries, body = get_counting(superuser_client, case.url(page, obj))
        assert status == 200, (page, body[:500])
        assert unbounded_counts(queries) == [], page
        first[page] = len(queries)
        if page in ("changelist", "search", "filter"):
            assert change_url.encode() in body, f"{page} does not list the row"

    add_many(obj)
    for page in PAGES:
        status, queries, _ = get_counting(superuser_client, case.url(page, obj))
        assert status == 200, page
        assert unbounded_counts(queries) == [], page
        assert len(queries) == first[page], (page, queries)
    # A fixed handful per page: session, user, count, rows, filter choices, delete summary.
    assert max(first.values()) <= 9, first


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("page", PAGES)
def test_it_shows_the_viewer_everything_but_add_and_delete(
    name: str, page: str, viewer_client: Client
) -> None:
    obj, case, _ = CASES[name]()
    status, _, body = get_counting(viewer_client, case.url(page, obj))
    assert status == (403 if page in ("add", "delete") else 200)
    if page == "change":
        assert b'name="_save"' not in body  # view only: no save button


@pytest.mark.parametrize("name", CASES)
def test_it_refuses_anonymous_and_unpermitted_staff(
    name: str, client: Client, outsider_client: Client
) -> None:
    obj, case, _ = CASES[name]()
    for page in PAGES:
        response = client.get(case.url(page, obj))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        assert outsider_client.get(case.url(page, obj)).status_code == 403


def test_it_counts_the_changelist_in_a_fixed_number_of_queries(
    superuser_client: Client, django_assert_num_queries: Callable[..., object]
) -> None:
    session = one_session()
    many_sessions(session)
    estimate = 1 if connection.vendor == "postgresql" else 0
    # 1 the login session, 2 the user, [3 the planner's row estimate, PostgreSQL only],
    # 4 the capped count, 5 the page of sessions with agent and user joined, 6 the agents for
    # the agent filter.
    with django_assert_num_queries(5 + estimate):
        response = superuser_client.get("/admin/sessions_app/session/")
    assert response.status_code == 200
    assert b"1,000 sessions" in response.content


def test_it_links_a_session_to_its_records_as_filtered_lists(superuser_client: Client) -> None:
    session = one_session()
    other = one_session()
    response = superuser_client.get(f"/admin/sessions_app/session/{session.pk}/change/")
    assert f"/admin/sessions_app/message/?session={session.pk}".encode() in response.content
    assert b"4 messages" in response.content
    assert b"2 tool calls (1 failed)" in response.content

    listed = superuser_client.get(f"/admin/sessions_app/message/?session={session.pk}")
    ids = {m.pk for m in Message.objects.filter(session=session)}
    others = {m.pk for m in Message.objects.filter(session=other)}
    for pk in ids:
        assert f"/admin/sessions_app/message/{pk}/change/".encode() in listed.content
    for pk in others:
        assert f"/admin/sessions_app/message/{pk}/change/".encode() not in listed.content
    calls = superuser_client.get(f"/admin/sessions_app/toolcall/?session={session.pk}")
    assert calls.status_code == 200 and b"2 tool calls" in calls.content


def test_it_never_loads_payloads_in_the_changelists(superuser_client: Client) -> None:
    one_tool_call()
    _, queries, _ = get_counting(superuser_client, "/admin/sessions_app/toolcall/")
    page = [q for q in queries if "sessions_app_toolcall" in q and "LIMIT" in q.upper()][-1]
    assert '"input"' not in page and '"output"' not in page
    _, queries, _ = get_counting(superuser_client, "/admin/sessions_app/message/")
    page = [q for q in queries if "sessions_app_message" in q and "LIMIT" in q.upper()][-1]
    assert '"raw"' not in page


def test_it_finishes_sessions_with_the_action(superuser_client: Client) -> None:
    active, other, done = one_session(), one_session(), one_session()
    Session.objects.filter(pk=done.pk).update(finished_at=timezone.now() - timedelta(days=1))
    response = superuser_client.post(
        "/admin/sessions_app/session/",
        {"action": "finish", "_selected_action": [active.pk, done.pk]},
        follow=True,
    )
    assert b"1 session(s) finished." in response.content
    assert Session.objects.get(pk=active.pk).finished_at is not None
    assert Session.objects.get(pk=other.pk).finished_at is None
    # Finishing again keeps the first time.
    assert Session.objects.get(pk=done.pk).finished_at < timezone.now() - timedelta(hours=23)


def test_it_keeps_the_viewer_from_running_actions(viewer_client: Client) -> None:
    session = one_session()
    viewer_client.post(
        "/admin/sessions_app/session/", {"action": "finish", "_selected_action": [session.pk]}
    )
    assert Session.objects.get(pk=session.pk).finished_at is None


def test_it_shows_json_pretty_and_refuses_invalid_json(superuser_client: Client) -> None:
    session = one_session()
    Session.objects.filter(pk=session.pk).update(metadata={"zeta": 1, "alpha": {"b": 2}})
    url = f"/admin/sessions_app/session/{session.pk}/change/"
    body = superuser_client.get(url).content.decode()
    # Sorted keys, indented by two, escaped for HTML.
    assert "{\n  &quot;alpha&quot;: {\n    &quot;b&quot;: 2\n  },\n  &quot;zeta&quot;: 1\n}" in body

    form = {"name": "Renamed", "platform": "web", "user": session.user_id, "metadata": "{oops"}
    response = superuser_client.post(url, form)
    assert response.status_code == 200
    assert b"Enter a valid JSON." in response.content
    assert b"{oops" in response.content  # the operator's text comes back to be fixed
    session.refresh_from_db()
    assert session.name != "Renamed" and session.metadata == {"zeta": 1, "alpha": {"b": 2}}

    form["metadata"] = '{"channel": "email"}'
    assert superuser_client.post(url, form).status_code == 302
    session.refresh_from_db()
    assert session.name == "Renamed" and session.metadata == {"channel": "email"}


def test_it_escapes_agent_output_in_lists_and_forms(superuser_client: Client) -> None:
    message = one_message()
    Message.objects.filter(pk=message.pk).update(
        text_content="<script>alert(1)</script>", raw={"html": "<img src=x onerror=alert(1)>"}
    )
    listed = superuser_client.get("/admin/sessions_app/message/").content
    assert b"<script>alert(1)</script>" not in listed
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in listed
    form = superuser_client.get(f"/admin/sessions_app/message/{message.pk}/change/").content
    assert b"<img src=x" not in form and b"<script>alert(1)" not in form


def test_it_adds_a_session_and_a_message_through_the_services(superuser_client: Client) -> None:
    session = one_session()
    response = superuser_client.post(
        "/admin/sessions_app/session/add/",
        {
            "agent": session.agent_id,
            "user": "",
            "name": "From admin",
            "platform": "",
            "metadata": "",
        },
    )
    assert response.status_code == 302
    added = Session.objects.get(name="From admin")
    assert added.metadata == {} and added.message_count == 0

    response = superuser_client.post(
        "/admin/sessions_app/message/add/",
        {
            "session": added.pk,
            "role": "user",
            "content_type": "text",
            "text_content": "Hi",
            "raw": "",
            "created_at_0": "2026-01-02",
            "created_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    message = Message.objects.get(session=added)
    assert (message.seq, message.agent_id, message.text_content) == (0, added.agent_id, "Hi")
    assert Session.objects.get(pk=added.pk).message_count == 1


def test_it_refuses_a_message_for_a_finished_session(superuser_client: Client) -> None:
    session = one_session()
    Session.objects.filter(pk=session.pk).update(finished_at=timezone.now())
    response = superuser_client.post(
        "/admin/sessions_app/message/add/",
        {
            "session": session.pk,
            "role": "user",
            "content_type": "text",
            "text_content": "Late",
            "created_at_0": "2026-01-02",
            "created_at_1": "10:00:00",
        },
    )
    assert response.status_code == 200
    assert b"The session is finished" in response.content
    assert Session.objects.get(pk=session.pk).message_count == 4


def test_it_keeps_counters_exact_when_a_tool_call_changes(superuser_client: Client) -> None:
    call = one_tool_call()
    url = f"/admin/sessions_app/toolcall/{call.pk}/change/"
    form = {
        "call_id": call.call_id,
        "tool_name": call.tool_name,
        "input": '{"order": 0}',
        "output": '{"status": "shipped"}',
        "state": "completed",
        "error_message": "",
        "approval": "",
        "duration_ms": "",
        "finished_at_0": "",
        "finished_at_1": "",
    }
    response = superuser_client.post(url, form)
    assert response.status_code == 302, response.content[:3000]
    call.refresh_from_db()
    assert (call.is_error, call.error_fingerprint, call.output) == (
        False,
        "",
        {"status": "shipped"},
    )
    assert Session.objects.get(pk=call.session_id).error_count == 0

    # A failed state is an error again, with its fingerprint, and counted.
    form |= {"state": "failed", "error_message": "Order 77 not found"}
    assert superuser_client.post(url, form).status_code == 302
    call.refresh_from_db()
    assert call.is_error and call.error_fingerprint
    assert Session.objects.get(pk=call.session_id).error_count == 1


def test_it_refuses_a_call_id_taken_in_the_session(superuser_client: Client) -> None:
    call = one_tool_call()
    response = superuser_client.post(
        "/admin/sessions_app/toolcall/add/",
        {
            "session": call.session_id,
            "message": "",
            "call_id": call.call_id,
            "tool_name": "lookup_order",
            "input": "",
            "output": "",
            "state": "completed",
            "created_at_0": "2026-01-02",
            "created_at_1": "10:00:00",
        },
    )
    assert response.status_code == 200
    assert b"already used in this session" in response.content
    assert Session.objects.get(pk=call.session_id).tool_call_count == 2


def test_it_adds_a_tool_call_and_counts_it(superuser_client: Client) -> None:
    call = one_tool_call()
    response = superuser_client.post(
        "/admin/sessions_app/toolcall/add/",
        {
            "session": call.session_id,
            "message": call.message_id,
            "call_id": "call_new",
            "tool_name": "refund",
            "input": '{"amount": 5}',
            "output": "",
            "state": "failed",
            "error_message": "Refund 12 refused",
            "created_at_0": "2026-01-02",
            "created_at_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    added = ToolCall.objects.get(call_id="call_new")
    assert added.is_error and added.agent_id == call.agent_id and added.input == {"amount": 5}
    session = Session.objects.get(pk=call.session_id)
    assert (session.tool_call_count, session.error_count) == (3, 2)


def test_it_deletes_a_message_and_closes_the_gap(superuser_client: Client) -> None:
    message = Message.objects.filter(session=one_session(), seq=1).get()  # has one tool call
    response = superuser_client.post(
        f"/admin/sessions_app/message/{message.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    session = Session.objects.get(pk=message.session_id)
    seqs = list(
        Message.objects.filter(session=session).order_by("seq").values_list("seq", "text_content")
    )
    assert seqs == [(0, "Question 0"), (1, "Question 1"), (2, "Looking up order 1")]
    assert (session.message_count, session.tool_call_count, session.error_count) == (3, 1, 0)


def test_it_deletes_tool_calls_and_uncounts_them(superuser_client: Client) -> None:
    call = one_tool_call()
    response = superuser_client.post(
        "/admin/sessions_app/toolcall/",
        {"action": "delete_selected", "_selected_action": [call.pk], "post": "yes"},
    )
    assert response.status_code == 302
    session = Session.objects.get(pk=call.session_id)
    assert (session.tool_call_count, session.error_count) == (1, 0)


def test_it_summarises_a_session_delete_without_listing_every_row(superuser_client: Client) -> None:
    message = one_message()
    many_messages(message)
    MemoryFactory(agent=None, session=message.session)
    url = f"/admin/sessions_app/session/{message.session_id}/delete/"
    status, queries, body = get_counting(superuser_client, url)
    assert status == 200
    # login session, user, the session, and one capped count per cascaded model (4)
    assert len(queries) == 7, queries
    assert b"Messages: 1,003" in body and b"Tool calls: 2" in body and b"Memories: 1" in body
    assert not re.search(rb"/admin/sessions_app/message/\d+/change/", body)  # no row-by-row list
    response = superuser_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Message.objects.filter(session_id=message.session_id).exists()
    assert not Memory.objects.filter(session_id=message.session_id).exists()


def test_it_pages_a_big_filtered_changelist(superuser_client: Client) -> None:
    message = one_message()
    many_messages(message)
    first = superuser_client.get("/admin/sessions_app/message/?role__exact=assistant")
    assert b"1,001 messages" in first.content
    last = superuser_client.get("/admin/sessions_app/message/?role__exact=assistant&p=21")
    assert last.status_code == 200
    assert last.content.count(b'class="action-select"') == 1  # 1,001 = 20 pages of 50 and 1


def test_it_shows_a_capped_count_and_links_the_next_page_by_cursor(
    superuser_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions_app.admin import SessionAdmin

    monkeypatch.setattr(SessionAdmin, "count_window", 10)  # 10 rows past the page, not 1,000
    session = one_session()
    many_sessions(session)
    first = superuser_client.get("/admin/sessions_app/session/?has_errors=0").content.decode()
    assert "60+ sessions" in first and "Select all 60+ sessions" in first
    assert "All 60+ selected" in first  # what "select all" then says: never a made-up total
    next_link = re.search(r'href="(\?[^"]*)" rel="next"', first)
    assert next_link is not None
    assert "has_errors=0" in next_link.group(1) and "cursor=" in next_link.group(1)
    assert "p=2" not in first and 'rel="prev"' not in first
    second = superuser_client.get(
        "/admin/sessions_app/session/" + next_link.group(1).replace("&amp;", "&")
    ).content.decode()
    # The count does not depend on how deep the page is: the same window from the list's start.
    assert "60+ sessions" in second and 'rel="prev"' in second and "« First" in second
    searched = superuser_client.get(
        f"/admin/sessions_app/session/?q={session.agent.name}"
    ).content.decode()
    assert "60+ results" in searched


def test_it_shows_the_viewer_json_pretty_and_read_only(viewer_client: Client) -> None:
    message = one_message()
    Message.objects.filter(pk=message.pk).update(raw={"z": [1], "a": "<b>"})
    body = viewer_client.get(f"/admin/sessions_app/message/{message.pk}/change/").content.decode()
    pretty = "{\n  &quot;a&quot;: &quot;&lt;b&gt;&quot;,\n  &quot;z&quot;: [\n    1\n  ]\n}"
    assert f"<pre>{pretty}</pre>" in body
    assert "<textarea" not in body


def test_it_searches_messages_by_id_only_for_ids_a_row_can_have(superuser_client: Client) -> None:
    session = _session()
    first = session.messages.order_by("seq").first()
    found = superuser_client.get(MESSAGES, {"q": str(first.pk)})
    assert str(first.pk) in re.findall(
        r'name="_selected_action" value="(\d+)"', found.content.decode()
    )
    # "²" is a digit to str.isdigit() and not to int(); the rest are past a bigint.
    for term in ("²", "9223372036854775808", "9" * 5000, "0" * 30 + "1"):
        response = superuser_client.get(MESSAGES, {"q": term})
        assert response.status_code == 200, term[:20]


def test_it_finds_sessions_by_id_user_email_or_agent_name(superuser_client: Client) -> None:
    session, other = one_session(), one_session()
    url = "/admin/sessions_app/session/?q="
    for term in (str(session.pk), session.user.email.upper(), session.agent.name):
        body = superuser_client.get(url + term).content
        assert f"/{session.pk}/change/".encode() in body, term
        assert f"/{other.pk}/change/".encode() not in body, term
    assert b"0 results" in superuser_client.get(url + "nobody").content


@pytest.mark.parametrize(
    ("url", "fields"),
    [
        ("/admin/sessions_app/session/add/", ("agent", "user")),
        ("/admin/sessions_app/message/add/", ("session",)),
        ("/admin/sessions_app/toolcall/add/", ("session", "message")),
        ("/admin/sessions_app/checkpoint/add/", ("session",)),
        ("/admin/memories/memory/add/", ("agent", "user", "session")),
    ],
)
def test_it_uses_raw_id_inputs_for_foreign_keys_to_big_tables(
    url: str, fields: tuple[str, ...], superuser_client: Client
) -> None:
    one_session()
    body = superuser_client.get(url).content.decode()
    for field in fields:
        assert f'<select name="{field}"' not in body
        assert re.search(rf'<input type="text" name="{field}"[^>]*vForeignKeyRawIdAdminField', body)
