"""Framework threads over the API: checkpoints as typed bytes back byte for byte, pending
writes all or none, lists newest first by keyset, and bad input answered with a 4xx."""

from __future__ import annotations

import base64
import json
import os

import pytest
from django.test import Client
from django.urls import reverse

from sessions_app.models import Checkpoint, CheckpointWrite, DailyActivity, Session
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, conversation

pytestmark = pytest.mark.django_db

STATE = bytes(range(256)) + b"\x00\xff not utf-8 \xc3\x28"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def put(api: ApiClient, checkpoint_id: str, **fields) -> object:
    body = {
        "agent": "graph",
        "thread_id": "thread/1",
        "checkpoint_id": checkpoint_id,
        "checkpoint": {"type": "msgpack", "data": b64(STATE)},
        "metadata": {"source": "loop", "step": 1},
        **fields,
    }
    return api.post("/threads/checkpoints", body)


def writes_body(checkpoint_id: str, *writes: tuple[int, str, str], **fields) -> dict:
    return {
        "agent": "graph",
        "thread_id": "thread/1",
        "checkpoint_id": checkpoint_id,
        "task_id": "task-1",
        "writes": [
            {"idx": idx, "channel": channel, "value": {"type": "json", "data": data}}
            for idx, channel, data in writes
        ],
        **fields,
    }


@pytest.fixture
def agent(db: None):
    return AgentFactory(name="graph")


def test_it_stores_a_checkpoint_and_gives_its_bytes_back(api: ApiClient, agent) -> None:
    created = put(api, "0001", parent_checkpoint_id="0000")
    assert created.status_code == 201, created.content
    assert created.json()["outcome"] == "created"
    session = Session.objects.get(agent=agent, external_key="thread/1")
    assert created.json()["session"] == str(session.pk)
    got = api.get("/threads/checkpoint", {"agent": "graph", "thread_id": "thread/1"}).json()
    assert base64.b64decode(got["checkpoint"]["data"]) == STATE
    assert got["checkpoint"]["type"] == "msgpack"
    assert got["parent_checkpoint_id"] == "0000"
    assert got["metadata"] == {"source": "loop", "step": 1}
    assert got["pending_writes"] == []
    # The thread's session is counted as any other session start.
    assert sum(DailyActivity.objects.values_list("sessions", flat=True)) == 1


def test_it_takes_a_retried_put_as_the_same_checkpoint(api: ApiClient, agent) -> None:
    assert put(api, "0001").status_code == 201
    again = put(api, "0001")
    assert again.status_code == 200 and again.json()["outcome"] == "unchanged"
    replaced = put(api, "0001", metadata={"source": "update", "step": 2})
    assert replaced.status_code == 200 and replaced.json()["outcome"] == "replaced"
    assert Checkpoint.objects.count() == 1
    assert Checkpoint.objects.get().metadata == {"source": "update", "step": 2}


def test_it_refuses_a_checkpoint_over_the_size_limit_with_413(
    api: ApiClient, agent, settings
) -> None:
    settings.CHECKPOINT_MAX_BYTES = 1000
    error = assert_error(
        put(api, "0001", checkpoint={"type": "bytes", "data": b64(os.urandom(1001))}), 413
    )
    assert "1001 bytes" in error["message"] and "CHECKPOINT_MAX_BYTES" in error["message"]
    assert not Session.objects.exists() and not Checkpoint.objects.exists()


def test_it_refuses_malformed_typed_bytes_with_422(api: ApiClient, agent) -> None:
    for data in ("not base64!", "QUJD=", "QUJ", "\u00e9"):
        error = assert_error(
            put(api, "0001", checkpoint={"type": "msgpack", "data": data}), 422, "checkpoint.data"
        )
        assert "base64" in error["message"]
    assert_error(put(api, "0001", checkpoint={"data": b64(b"x")}), 422, "checkpoint.type")
    assert_error(put(api, ""), 422, "checkpoint_id")
    assert_error(put(api, "0001", agent="nobody"), 404)
    assert not Checkpoint.objects.exists()


def test_it_stores_a_tasks_writes_all_or_none(api: ApiClient, agent) -> None:
    put(api, "0001")
    good = b64(json.dumps({"x": 1}).encode())
    # A bad value anywhere in the batch stores none of it.
    bad = writes_body("0001", (0, "a", good), (1, "b", "%%%"))
    assert_error(api.post("/threads/writes", bad), 422, "writes.1.value.data")
    twice = writes_body("0001", (0, "a", good), (0, "b", good))
    assert_error(api.post("/threads/writes", twice), 422, "writes")
    assert not CheckpointWrite.objects.exists()

    ok = api.post(
        "/threads/writes",
        writes_body("0001", (0, "a", good), (1, "b", good), (-1, "__error__", good)),
    )
    assert ok.status_code == 200 and ok.json() == {"writes": 3}
    # A retry stores nothing twice; a special write (negative idx) is replaced.
    again = writes_body("0001", (0, "a", b64(b"other")), (-1, "__error__", b64(b'"new"')))
    assert api.post("/threads/writes", again).status_code == 200
    stored = {w.idx: (w.channel, bytes(w.value)) for w in CheckpointWrite.objects.all()}
    assert stored == {0: ("a", b'{"x": 1}'), 1: ("b", b'{"x": 1}'), -1: ("__error__", b'"new"')}
    got = api.get("/threads/checkpoint", {"agent": "graph", "thread_id": "thread/1"}).json()
    assert [(w["task_id"], w["idx"], w["channel"]) for w in got["pending_writes"]] == [
        ("task-1", -1, "__error__"),
        ("task-1", 0, "a"),
        ("task-1", 1, "b"),
    ]


def test_it_answers_an_unknown_thread_or_checkpoint_with_404(api: ApiClient, agent) -> None:
    query = {"agent": "graph", "thread_id": "unknown"}
    assert "unknown" in assert_error(api.get("/threads/checkpoint", query), 404)["message"]
    put(api, "0001")
    missing = {"agent": "graph", "thread_id": "thread/1", "checkpoint_id": "0009"}
    assert "0009" in assert_error(api.get("/threads/checkpoint", missing), 404)["message"]
    assert api.get("/threads/checkpoints", query).json() == {"items": [], "next_cursor": None}
    copy = {"agent": "graph", "source_thread_id": "unknown", "target_thread_id": "t2"}
    assert "unknown" in assert_error(api.post("/threads/copy", copy), 404, "thread_id")["message"]
    assert not Session.objects.filter(external_key="t2").exists()


def test_it_keeps_writes_that_arrive_before_their_checkpoint(api: ApiClient, agent) -> None:
    # LangGraph stores a step's checkpoint in the background while the step's tasks write.
    early = api.post("/threads/writes", writes_body("0001", (0, "a", b64(b"1"))))
    assert early.status_code == 200
    put(api, "0001")
    got = api.get("/threads/checkpoint", {"agent": "graph", "thread_id": "thread/1"}).json()
    assert [(w["channel"], w["value"]["data"]) for w in got["pending_writes"]] == [("a", b64(b"1"))]


def test_it_refuses_writes_over_the_size_limit_and_stores_none(
    api: ApiClient, agent, settings
) -> None:
    put(api, "0001")
    settings.CHECKPOINT_MAX_BYTES = 10
    too_big = writes_body("0001", (0, "a", b64(b"small")), (1, "b", b64(b"x" * 11)))
    assert "write 1" in assert_error(api.post("/threads/writes", too_big), 413)["message"]
    assert not CheckpointWrite.objects.exists()


def test_it_lists_a_thread_newest_first_by_keyset_with_filters(
    api: ApiClient, agent, django_assert_max_num_queries
) -> None:
    for i in range(7):
        source = "input" if i % 2 else "loop"
        put(api, f"{i:04}", metadata={"source": source, "step": i, "run_id": f"run-{i % 3}"})
    put(api, "0100", checkpoint_ns="child:1")
    query = {"agent": "graph", "thread_id": "thread/1", "limit": 3}
    seen: list[str] = []
    cursor = None
    while True:
        with django_assert_max_num_queries(4):  # key, the thread, the page, its writes
            page = api.get(
                "/threads/checkpoints", {**query, "cursor": cursor} if cursor else query
            ).json()
        seen += [item["checkpoint_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["0100", "0006", "0005", "0004", "0003", "0002", "0001", "0000"]

    def ids(**params) -> list[str]:
        body = api.get(
            "/threads/checkpoints", {"agent": "graph", "thread_id": "thread/1", **params}
        ).json()
        return [item["checkpoint_id"] for item in body["items"]]

    assert ids(checkpoint_ns="") == ["0006", "0005", "0004", "0003", "0002", "0001", "0000"]
    assert ids(checkpoint_ns="child:1") == ["0100"]
    assert ids(before="0003", checkpoint_ns="") == ["0002", "0001", "0000"]
    assert ids(metadata=json.dumps({"source": "input"})) == ["0005", "0003", "0001"]
    assert ids(metadata=json.dumps({"source": "input", "step": 3})) == ["0003"]
    assert ids(metadata=json.dumps({"run_id": "run-0", "step": 6})) == ["0006"]
    assert ids(metadata=json.dumps({"weird__key": None})) == []
    assert_error(
        api.get("/threads/checkpoints", {"agent": "graph", "metadata": "[1]"}), 422, "metadata"
    )
    assert_error(
        api.get("/threads/checkpoints", {"agent": "graph", "metadata": "{"}), 422, "metadata"
    )


def test_it_deletes_prunes_and_copies_threads_keeping_the_sessions(api: ApiClient, agent) -> None:
    for i in range(3):
        put(api, f"{i:04}", metadata={"run_id": f"run-{i}"})
    session = Session.objects.get(external_key="thread/1")
    conversation(session, turns=1)
    copied = api.post(
        "/threads/copy",
        {"agent": "graph", "source_thread_id": "thread/1", "target_thread_id": "thread/2"},
    )
    assert copied.json() == {"checkpoints": 3, "writes": 0}
    onto_itself = api.post(
        "/threads/copy",
        {"agent": "graph", "source_thread_id": "thread/1", "target_thread_id": "thread/1"},
    )
    assert onto_itself.status_code == 200
    assert onto_itself.json() == {"checkpoints": 0, "writes": 0}  # all there already
    runs = api.post("/threads/delete-for-runs", {"agent": "graph", "run_ids": ["run-0"]})
    assert runs.json() == {"checkpoints": 2, "writes": 0}  # one in each thread
    pruned = api.post("/threads/prune", {"agent": "graph", "thread_ids": ["thread/2"]})
    assert pruned.json() == {"checkpoints": 1, "writes": 0}
    bad = api.post("/threads/prune", {"agent": "graph", "thread_ids": [], "strategy": "all"})
    assert_error(bad, 422, "strategy")
    deleted = api.post("/threads/delete", {"agent": "graph", "thread_id": "thread/1"})
    assert deleted.json() == {"checkpoints": 2, "writes": 0}
    session.refresh_from_db()
    assert session.message_count == 2  # the conversation stays
    assert list(Checkpoint.objects.values_list("checkpoint_id", flat=True)) == ["0002"]


def test_it_refuses_writes_with_a_read_key_and_anything_without_a_key(
    read_api: ApiClient, anon_api: ApiClient, agent
) -> None:
    assert_error(put(read_api, "0001"), 403)
    assert_error(anon_api.get("/threads/checkpoints", {"agent": "graph"}), 401)
    assert_error(anon_api.get("/threads/checkpoint", {"agent": "graph", "thread_id": "t"}), 401)


def test_it_keeps_the_plain_checkpoint_api_working_beside_threads(api: ApiClient, agent) -> None:
    put(api, "0001")
    session = Session.objects.get(external_key="thread/1")
    plain = api.post(f"/sessions/{session.pk}/checkpoints", {"type": "notes", "data": {"k": 1}})
    assert plain.status_code == 201
    items = api.get(f"/sessions/{session.pk}/checkpoints").json()["items"]
    assert [(i["type"], i["checkpoint_id"]) for i in items] == [
        ("notes", ""),
        ("langgraph", "0001"),
    ]
    assert api.get(f"/sessions/{session.pk}/checkpoints/latest").json()["data"] == {"k": 1}


def test_the_transcript_shows_a_threads_checkpoints(
    api: ApiClient, viewer_client: Client, agent
) -> None:
    import ormsgpack

    state = {"v": 4, "channel_values": {"count": 3, "note": "<script>alert(1)</script>"}}
    packed = {"type": "msgpack", "data": b64(ormsgpack.packb(state))}
    put(api, "0001", checkpoint=packed, metadata={"source": "loop", "step": 3})
    opaque = {"type": "pickle", "data": b64(b"\x80\x04opaque")}
    put(
        api,
        "0002",
        checkpoint=opaque,
        parent_checkpoint_id="0001",
        metadata={"source": "input", "step": 4},
    )
    session = Session.objects.get(external_key="thread/1")
    html = viewer_client.get(reverse("console:session-detail", args=[session.pk])).content.decode()
    assert "step 3" in html and "step 4" in html and "loop" in html
    assert "&quot;count&quot;: 3" in html  # the state, decoded
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "8 bytes of pickle" in html  # not decodable: its size
    assert "0001" in html  # the parent of 0002


def test_the_admin_lists_and_shows_a_thread_checkpoint_read_only(
    api: ApiClient, superuser_client: Client, agent
) -> None:
    put(api, "0001", parent_checkpoint_id="0000")
    checkpoint = Checkpoint.objects.get()
    listed = superuser_client.get(reverse("admin:sessions_app_checkpoint_changelist"))
    assert listed.status_code == 200 and "0001" in listed.content.decode()
    page = superuser_client.get(
        reverse("admin:sessions_app_checkpoint_change", args=[checkpoint.pk])
    ).content.decode()
    assert f"{len(STATE):,} bytes of msgpack" in page
    assert "0000" in page and 'name="checkpoint_id"' not in page


def test_it_never_fails_on_odd_metadata_filters(api: ApiClient, agent) -> None:
    put(api, "0001", metadata={"a": [1, 2], "b": {"c": 1}, "n": 2**70, "f": 1.5, "t": True})
    odd = [
        ({"a": [1, 2]}, 1),
        ({"b": {"c": 1}}, 1),
        ({"n": 2**70}, 1),
        ({"f": 1.5}, 1),
        ({"t": True}, 1),
        ({"t": 1}, 0),
        ({"": 1}, 0),
        ({"a'b": "x"}, 0),
        ({'a"b': None}, 0),
        ({"$.x": 1}, 0),
        ({"a.b": 1}, 0),
        ({"n": 2**200}, 0),
        ({"ü": "\u2028"}, 0),
    ]
    for metadata, found in odd:
        response = api.get(
            "/threads/checkpoints", {"agent": "graph", "metadata": json.dumps(metadata)}
        )
        assert response.status_code == 200, (metadata, response.content)
        assert len(response.json()["items"]) == found, metadata


def test_it_answers_a_metadata_filter_nested_past_any_depth_with_422(api: ApiClient, agent) -> None:
    deep = "[" * 4000 + "]" * 4000
    answer = api.get("/threads/checkpoints", {"agent": "graph", "metadata": '{"a": ' + deep + "}"})
    assert_error(answer, 422, "metadata")


def test_the_transcript_survives_a_state_nested_past_any_depth(
    api: ApiClient, viewer_client: Client, agent
) -> None:
    deep = ("[" * 5000 + "]" * 5000).encode()
    put(api, "0001", checkpoint={"type": "json", "data": b64(deep)})
    session = Session.objects.get(external_key="thread/1")
    session.metadata = {"team": "billing"}
    session.save(update_fields=["metadata"])
    page = viewer_client.get(reverse("console:session-detail", args=[session.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "10000 bytes of json" in html  # shown by its size, not decoded
    # The session's own metadata, not the checkpoint's, in the session's panel.
    assert "&quot;team&quot;: &quot;billing&quot;" in html


def test_a_step_runs_a_fixed_number_of_queries(api: ApiClient, agent, django_assert_num_queries):
    """put, put_writes and get_tuple on a thread that exists: the key and the thread (with its
    agent) in a query each, then the insert, or the checkpoint and its writes."""
    assert put(api, "0001").status_code == 201  # the thread starts
    # The key, the thread; the insert in a savepoint (the test runs in a transaction).
    with django_assert_num_queries(5):
        assert put(api, "0002", parent_checkpoint_id="0001").status_code == 201
    # The key, the thread; the insert in a savepoint (the batch's transaction).
    with django_assert_num_queries(5):
        response = api.post("/threads/writes", writes_body("0002", (0, "messages", b64(b"[]"))))
        assert response.status_code == 200
    # The key, the thread, the checkpoint, its writes.
    with django_assert_num_queries(4):
        got = api.get("/threads/checkpoint", {"agent": "graph", "thread_id": "thread/1"})
    assert got.json()["checkpoint_id"] == "0002"
    assert len(got.json()["pending_writes"]) == 1


def test_it_answers_an_unknown_agent_with_404_before_reading_the_filter(
    api: ApiClient, agent
) -> None:
    for metadata in ("", "not json", "[1]"):
        unknown = api.get("/threads/checkpoints", {"agent": "nobody", "metadata": metadata})
        assert_error(unknown, 404)
        known = api.get("/threads/checkpoints", {"agent": "graph", "metadata": metadata})
        assert_error(known, 422, "metadata")
