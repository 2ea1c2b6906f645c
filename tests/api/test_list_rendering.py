"""The lists answer the JSON they answered when every row was a model instance read through
Ninja's own `Schema` (getter and resolvers) and rendered by Ninja's own encoder: the same values
in the same order, numbers written alike. Only the bytes between them differ, as the responses
are now compact UTF-8 from orjson (`ApiRenderer`), and the times, which are written to the
microsecond (`iso_time`) where Ninja's encoder cut them to milliseconds: the reference below is
Ninja's encoder with that one change.

The message, tool call and session lists now read their rows as dicts of columns, validated
straight by `OutputSchema`, and every response is rendered by `ApiRenderer`. Here the same rows
are rendered both ways, page by page, with nulls, hostile and non-ASCII text, odd JSON and times
with and without microseconds.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy
from ninja import Schema
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from config.api import ApiJSONEncoder, ApiRenderer
from config.keyset import keyset_page
from config.times import iso_time
from sessions_app import api as sessions_api
from sessions_app.models import Message, Session, ToolCall
from sessions_app.selectors import (
    SessionFilters,
    message_list,
    session_list,
    tool_call_list,
    tool_error_group_page,
    tool_error_groups,
)
from sessions_app.services import MessageIn, ToolCallIn, message_append
from tests.api.conftest import ApiClient
from tests.factories import AgentFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script> & \' " \\ / \u2028\u2029 \x01\x7f ☃ 😀 עברית ﷽'
NEWEST = ("-created_at", "-id")


class NinjaEncoder(NinjaJSONEncoder):
    """Ninja's own encoder, with times in the API's one form."""

    def default(self, o: Any) -> Any:
        return iso_time(o) if isinstance(o, dt.datetime) else super().default(o)


class NinjaRenderer(JSONRenderer):
    encoder_class = NinjaEncoder


def ninja_schema(schema: type[Schema], **nested: Any) -> type[Schema]:
    """`schema`'s fields and resolvers on Ninja's own `Schema`: how rows were validated before.
    `nested` replaces a field's type (a page's items)."""
    annotations = {name: field.annotation for name, field in schema.model_fields.items()}
    namespace: dict[str, Any] = {"__annotations__": {**annotations, **nested}}
    for name in annotations:
        resolver = getattr(schema, f"resolve_{name}", None)
        if resolver is not None:
            namespace[f"resolve_{name}"] = staticmethod(resolver)
    return type(f"Ninja{schema.__name__}", (Schema,), namespace)


def page_schema(item: type[Schema]) -> type[Schema]:
    return type(
        "NinjaPage",
        (Schema,),
        {"__annotations__": {"items": list[item], "next_cursor": str | None}},
    )


def ninja_bytes(schema: type[Schema], value: Any) -> bytes:
    """What Ninja made of `value` with `schema`: validate, dump, render with its own encoder."""
    data = schema.model_validate(value).model_dump()
    return NinjaRenderer().render(None, data, response_status=200).encode()


def written(body: bytes) -> str:
    """A JSON document rewritten one way: separators and escapes aside, two documents read the
    same only if their values, key order and number forms (1 against 1.0) are the same."""
    return json.dumps(json.loads(body), ensure_ascii=False)


MESSAGE_PAGE = page_schema(ninja_schema(sessions_api.MessageOut))
TOOL_CALL = ninja_schema(sessions_api.ToolCallOut)
TOOL_CALL_PAGE = page_schema(TOOL_CALL)
SESSION = ninja_schema(sessions_api.SessionOut)
SESSION_PAGE = page_schema(SESSION)
ERROR_GROUP_PAGE = page_schema(ninja_schema(sessions_api.ErrorGroupOut))
TRANSCRIPT_PAGE = page_schema(
    ninja_schema(sessions_api.MessageWithCallsOut, tool_calls=list[TOOL_CALL])
)


@pytest.fixture
def world(db: None) -> dict[str, Session]:
    """Two sessions of a hostile-named agent: one with a unicode-named user, finished, holding
    every kind of message and tool call; one without a user, active, created on a whole second."""
    agent = AgentFactory(name=f"agent {HOSTILE}")
    person = UserFactory(email="zoë.ünïcode@example.com")
    finished = SessionFactory(
        agent=agent,
        user=person,
        name=HOSTILE,
        platform="web ☃",
        metadata={HOSTILE: [1, 2.5, -0.0, 1e300, 2**53 + 1, None, True, {"nested": HOSTILE}]},
        created_at=timezone.now().replace(microsecond=123456) - dt.timedelta(days=1),
    )
    active = SessionFactory(
        agent=agent,
        user=None,
        name="",
        platform="",
        metadata={},
        created_at=timezone.now().replace(microsecond=0) - dt.timedelta(hours=2),
    )
    on_the_second = dt.datetime(2025, 3, 1, 10, 0, 5, tzinfo=dt.UTC)
    message_append(
        session_id=finished.pk,
        messages=[
            MessageIn(role="system", text_content=""),
            MessageIn(role="user", text_content=HOSTILE, created_at=on_the_second),
            MessageIn(
                role="assistant",
                content_type="tool_use",
                text_content="\n\t" + HOSTILE,
                media_url="https://cdn.example.com/a.png?x=<b>&y=\"'",
                model="gpt-5-mini",
                input_tokens=0,
                output_tokens=2**31 - 1,
                raw={"kept": "out of lists"},
                tool_calls=[
                    ToolCallIn(
                        tool_name=HOSTILE[:200],
                        call_id="c1",
                        input={HOSTILE: [HOSTILE, 0.1, 10**20]},
                        output=HOSTILE,
                        state="failed",
                        error_message=HOSTILE,
                        duration_ms=0,
                        finished_at=on_the_second,
                    ),
                    ToolCallIn(
                        tool_name="send_email",
                        call_id="c2",
                        input=["a", 1, None],
                        state="pending",
                        approval={"by": "ops@example.com", "note": HOSTILE},
                    ),
                    ToolCallIn(tool_name="noop", call_id="c3", input=None, output=None),
                ],
            ),
            MessageIn(role="tool", content_type="tool_result", text_content="😀" * 50),
        ],
    )
    failing = ToolCallIn(
        tool_name="search", call_id="s1", state="failed", error_message="Timed out after 30s"
    )
    message_append(
        session_id=active.pk,
        messages=[MessageIn(role="user", text_content="hi", tool_calls=[failing])],
    )
    Session.objects.filter(pk=finished.pk).update(finished_at=timezone.now().replace(microsecond=1))
    # A call recorded without a message.
    ToolCall.objects.create(
        session=active,
        agent=agent,
        message=None,
        tool_name="orphan",
        input=0,
        output=[],
        is_error=True,
        state="failed",
        error_message="x",
        created_at=on_the_second,
    )
    return {"finished": finished, "active": active}


def assert_pages_alike(
    api: ApiClient,
    path: str,
    params: dict[str, str],
    rows: Callable[[], QuerySet],
    schema: type[Schema],
    ordering: tuple[str, ...] = NEWEST,
) -> int:
    """Walk the list two rows a page; each page reads as what Ninja made of the model instances.
    Returns how many rows were seen."""
    cursor, seen = None, 0
    while True:
        response = api.get(path, {**params, "limit": 2, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        page = keyset_page(rows(), ordering=ordering, cursor=cursor, size=2)
        assert all(isinstance(item, Message | ToolCall | Session) for item in page.items)
        expected = ninja_bytes(schema, {"items": page.items, "next_cursor": page.next_cursor})
        assert written(response.content) == written(expected)
        seen += len(page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_it_renders_messages_as_ninja_did(api: ApiClient, world: dict[str, Session]):
    finished = world["finished"]
    cases = [
        ({}, {}),
        ({"session": str(finished.pk)}, {"session": finished.pk}),
        (
            {"agent": str(finished.agent_id), "role": "user"},
            {"agent": finished.agent_id, "role": "user"},
        ),
    ]
    seen = [
        assert_pages_alike(
            api, "/messages", params, lambda f=filters: message_list(**f), MESSAGE_PAGE
        )
        for params, filters in cases
    ]
    assert seen == [5, 4, 2]


def test_it_renders_tool_calls_as_ninja_did(api: ApiClient, world: dict[str, Session]):
    cases = [
        ({}, {}),
        ({"is_error": "true"}, {"is_error": True}),
        ({"has_approval": "true"}, {"has_approval": True}),
        ({"session": str(world["active"].pk)}, {"session": world["active"].pk}),
    ]
    seen = [
        assert_pages_alike(
            api, "/tool-calls", params, lambda f=filters: tool_call_list(**f), TOOL_CALL_PAGE
        )
        for params, filters in cases
    ]
    assert seen == [5, 3, 1, 2]


def test_it_renders_sessions_as_ninja_did(api: ApiClient, world: dict[str, Session]):
    agent = world["finished"].agent_id
    cases = [
        ({}, SessionFilters()),
        ({"agent": str(agent)}, SessionFilters(agent=agent)),
        ({"status": "active"}, SessionFilters(status="active")),
        ({"has_errors": "true"}, SessionFilters(has_errors=True)),
    ]
    seen = [
        assert_pages_alike(
            api, "/sessions", params, lambda f=filters: session_list(f), SESSION_PAGE
        )
        for params, filters in cases
    ]
    assert seen == [2, 2, 1, 2]
    # One session through the model instance, as the detail and the writes answer it.
    for session in world.values():
        response = api.get(f"/sessions/{session.pk}")
        expected = ninja_bytes(SESSION, session_list().get(pk=session.pk))
        assert written(response.content) == written(expected)


def test_it_renders_a_transcript_with_its_tool_calls_as_ninja_did(
    api: ApiClient, world: dict[str, Session]
):
    session = world["finished"]

    def rows() -> QuerySet:
        calls = Prefetch("tool_calls", queryset=ToolCall.objects.order_by("id"))
        return Message.objects.without_payloads().filter(session=session).prefetch_related(calls)

    path = f"/sessions/{session.pk}/messages"
    assert assert_pages_alike(api, path, {}, rows, TRANSCRIPT_PAGE, ordering=("seq",)) == 4


def test_it_renders_error_groups_as_ninja_did(api: ApiClient, world: dict[str, Session]):
    # Groups were dicts before too: only Ninja's getter around each is gone.
    for since in ("", "2025-03-01T10:00:05Z"):
        params = {"since": since} if since else {}
        response = api.get("/tool-calls/errors", {**params, "limit": 1})
        window = {"since": dt.datetime.fromisoformat(since)} if since else {}
        page = tool_error_group_page(tool_error_groups(**window), cursor=None, size=1)
        items = [{**row, "fingerprint": row["error_fingerprint"]} for row in page.items]
        expected = {"items": items, "next_cursor": page.next_cursor}
        assert written(response.content) == written(ninja_bytes(ERROR_GROUP_PAGE, expected))
        assert response.json()["next_cursor"]


class Colour(enum.Enum):
    RED = "red"


PARIS = dt.timezone(dt.timedelta(hours=2))
EVERY_TYPE = [
    dt.datetime(2025, 3, 1, 10, 0, 5, tzinfo=dt.UTC),
    dt.datetime(2025, 3, 1, 10, 0, 5, 123456, tzinfo=dt.UTC),
    dt.datetime(2025, 3, 1, 10, 0, 5, 999, tzinfo=PARIS),
    dt.datetime(2025, 3, 1, 10, 0, 5, 1),
    dt.datetime.min,
    dt.datetime.max.replace(tzinfo=dt.UTC),
    dt.date(2025, 3, 1),
    dt.time(10, 0, 5, 250000),
    dt.timedelta(days=1, microseconds=5),
    decimal.Decimal("1.10"),
    uuid.UUID("00000000-0000-4000-8000-000000000001"),
    Colour.RED,
    gettext_lazy("Not found."),
    sessions_api.DeletedOut(deleted={"messages": 2}),
]


def test_it_encodes_every_type_as_ninjas_encoder():
    for value in EVERY_TYPE:
        ours = json.dumps({"v": [value]}, cls=ApiJSONEncoder)
        assert ours == json.dumps({"v": [value]}, cls=NinjaEncoder), value
    with pytest.raises(TypeError):
        json.dumps(object(), cls=ApiJSONEncoder)


def test_it_renders_every_type_through_orjson_as_ninjas_encoder():
    renderer = ApiRenderer()
    alike = [value for value in EVERY_TYPE if not isinstance(value, Colour)]
    for value in [*alike, HOSTILE, -0.0, 1e300, 2**63 - 1, -(2**63)]:
        ours = renderer.render(None, {"v": [value]}, response_status=200)
        assert isinstance(ours, bytes), value  # orjson's, not the fallback's
        assert written(ours) == written(json.dumps({"v": [value]}, cls=NinjaEncoder)), value
    # A plain Enum (no schema of the API holds one; its choices are str enums) is written as its
    # value, where Ninja's encoder wrote "Colour.RED".
    assert renderer.render(None, [Colour.RED], response_status=200) == b'["red"]'


def test_it_falls_back_to_the_stdlib_for_what_orjson_refuses():
    renderer = ApiRenderer()
    deep: list[Any] = []
    for _ in range(300):  # orjson stops at 254 levels
        deep = [deep]
    refused = [{"n": 2**64}, {"n": -(2**70)}, {"k": {1: "an int key"}}, {"deep": deep}]
    for body in refused:
        ours = renderer.render(None, body, response_status=200)
        assert written(ours.encode()) == written(json.dumps(body, cls=NinjaEncoder))
    with pytest.raises(TypeError):
        renderer.render(None, {"v": object()}, response_status=200)


def test_it_answers_an_agents_huge_integer_exactly(api: ApiClient, world: dict[str, Session]):
    # The world's failing call holds 10**20 in its input: past orjson's 64 bits.
    response = api.get("/tool-calls", {"is_error": "true", "session": str(world["finished"].pk)})
    assert response.status_code == 200, response.content
    (call,) = response.json()["items"]
    assert call["input"][HOSTILE] == [HOSTILE, 0.1, 10**20]


def test_it_sends_text_as_utf8(api: ApiClient, world: dict[str, Session]):
    # The active session: the finished one's metadata reads back from PostgreSQL's jsonb with
    # 1e300 as a 301-digit integer, which the stdlib renders (ASCII-escaped) instead.
    response = api.get(f"/sessions/{world['active'].pk}")
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "☃ 😀".encode() in response.content and b"\\u2603" not in response.content
    assert response.json()["agent_name"] == f"agent {HOSTILE}"


def test_it_writes_every_time_in_one_form_to_the_microsecond():
    # Each distinct value is written once per response; equal instants at any offset, naive
    # (UTC) or aware, are all written as the same UTC time with six digits of microseconds.
    utc = dt.datetime(2025, 3, 1, 8, 0, 5, 123456, tzinfo=dt.UTC)
    paris = utc.astimezone(dt.timezone(dt.timedelta(hours=2)))
    whole = dt.datetime(2025, 3, 1, 8, 0, 5, tzinfo=dt.UTC)
    ids = [uuid.UUID("00000000-0000-4000-8000-000000000001"), uuid.uuid4()]
    body = {"v": [utc, paris, utc.replace(tzinfo=None), whole, *ids, paris, utc, *ids]}
    written = json.loads(json.dumps(body, cls=ApiJSONEncoder))["v"]
    assert written[:4] == [
        "2025-03-01T08:00:05.123456Z",
        "2025-03-01T08:00:05.123456Z",
        "2025-03-01T08:00:05.123456Z",
        "2025-03-01T08:00:05.000000Z",
    ]
    assert written[4:6] == [str(i) for i in ids] == written[8:]
    assert written[6:8] == [written[0], written[0]]
