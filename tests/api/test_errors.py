"""One error shape for everything the client can get wrong, and never a 500."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from sessions_app.models import Message
from tests.api.conftest import ApiClient, assert_error
from tests.factories import AgentFactory, SessionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(db: None):
    return SessionFactory(agent=AgentFactory(name="support-bot"))


def test_it_answers_400_for_malformed_json(api: ApiClient):
    for raw in ("{bad", '{"name": "x",}', " ", "\xff\xfe", "[" * 100_000):
        assert_error(api.post("/agents", raw=raw), 400)


def test_it_answers_400_for_nan_and_infinity(api: ApiClient):
    for raw in ('{"name": "x", "config": {"t": NaN}}', '{"name": "x", "config": {"t": 1e999}}'):
        assert_error(api.post("/agents", raw=raw), 400)


def test_it_answers_422_with_the_path_of_each_bad_field(api: ApiClient, session):
    body = {
        "messages": [
            {"role": "user", "text_content": "fine"},
            {"role": "robot", "seq": 2**40, "tool_calls": [{"tool_name": "", "state": "odd"}]},
        ]
    }
    error = assert_error(
        api.post(f"/sessions/{session.pk}/messages", body),
        422,
        "messages.1.role",
        "messages.1.seq",
        "messages.1.tool_calls.0.tool_name",
        "messages.1.tool_calls.0.state",
    )
    assert error["code"] == "invalid"
    assert not Message.objects.exists()


def test_it_refuses_unknown_fields_rather_than_dropping_them(api: ApiClient):
    assert_error(api.post("/agents", {"name": "x", "modle": "typo"}), 422, "modle")


def test_it_refuses_nul_characters_that_postgresql_cannot_store(api: ApiClient, session):
    assert_error(api.post("/agents", {"name": "bad\x00name"}), 422, "name")
    assert_error(api.post("/agents", {"name": "ok", "config": {"k": "v\x00"}}), 422, "config")
    assert_error(api.post("/agents", {"name": "ok", "config": {"k\x00": 1}}), 422, "config")
    assert_error(api.get("/sessions", {"platform": "we\x00b"}), 422, "platform")
    bad = {"messages": [{"role": "user", "raw": {"a": ["\x00"]}}]}
    assert_error(api.post(f"/sessions/{session.pk}/messages", bad), 422, "messages.0.raw")


def test_it_refuses_lone_surrogates(api: ApiClient):
    assert_error(api.post("/agents", raw='{"name": "a\\ud800"}'), 422, "name")
    assert_error(api.post("/agents", raw='{"name": "a", "config": {"x": "\\udfff"}}'), 422)


def test_it_refuses_integers_that_overflow_their_columns(api: ApiClient, session):
    too_big = 2**31
    body = {"messages": [{"role": "user", "input_tokens": too_big}]}
    assert_error(api.post(f"/sessions/{session.pk}/messages", body), 422, "messages.0.input_tokens")
    assert_error(api.get(f"/tool-calls/{2**63}"), 422, "tool_call_id")
    assert_error(api.get(f"/messages/{2**70}"), 422, "message_id")
    # An id that fits the schema but not a row is simply not there.
    assert_error(api.get(f"/agents/{2**70}"), 404)
    assert api.get("/sessions", {"agent": str(2**70)}).status_code in (200, 404)


def test_it_refuses_times_that_overflow_in_utc(api: ApiClient):
    body = {"agent": "support-bot", "created_at": "9999-12-31T23:00:00-05:00"}
    assert_error(api.post("/sessions", body), 422, "created_at")
    assert_error(api.get("/sessions", {"created_after": "0.5"}), 422, "created_after")


def test_it_answers_422_for_an_invalid_uuid_and_a_forged_cursor(api: ApiClient, session):
    assert_error(api.get("/sessions/not-a-uuid"), 422, "session_id")
    for cursor in ("nonsense", "eyJvIjpbIi1jcmVhdGVkX2F0Il0sInYiOlsxXX0", "%%%"):
        assert_error(api.get("/sessions", {"cursor": cursor}), 422, "cursor")
        assert_error(api.get("/tool-calls/errors", {"cursor": cursor}), 422, "cursor")


def test_it_answers_404_in_the_error_shape(api: ApiClient):
    error = assert_error(api.get("/sessions/7f9c0f8e-0000-4000-8000-000000000000"), 404)
    assert error["code"] == "not_found"
    assert_error(api.get("/no-such-thing"), 404)


def test_it_answers_405_in_the_error_shape_with_allow(api: ApiClient):
    response = api.request("PUT", "/agents", {"name": "x"})
    assert_error(response, 405)
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_it_answers_413_for_a_body_over_the_limit(api: ApiClient, session):
    body = {"messages": [{"role": "user", "text_content": "x" * 2000}]}
    error = assert_error(api.post(f"/sessions/{session.pk}/messages", body), 413)
    assert "1000 bytes" in error["message"]
    assert not Message.objects.exists()


@override_settings(API_MAX_BATCH=3)
def test_it_answers_413_for_a_batch_over_the_limit(api: ApiClient, session):
    body = {"messages": [{"role": "user", "text_content": str(i)} for i in range(4)]}
    error = assert_error(api.post(f"/sessions/{session.pk}/messages", body), 413)
    assert "at most 3 messages" in error["message"]
    assert not Message.objects.exists()


def test_it_answers_409_for_a_conflict(api: ApiClient, session):
    body = {"agent": "support-bot", "id": str(session.pk)}
    error = assert_error(api.post("/sessions", body), 409, "id")
    assert error["code"] == "conflict"


def test_it_refuses_a_json_body_that_is_not_an_object(api: ApiClient):
    for raw in ("[]", "1", '"x"', "null"):
        response = api.post("/agents", raw=raw)
        assert response.status_code in (400, 422), raw
        assert json.loads(response.content)["error"]


def test_it_keeps_json_types_in_bodies(api: ApiClient, session):
    assert_error(api.post("/agents", {"name": "x", "active": 0}), 422, "active")
    body = {"messages": [{"role": "user", "input_tokens": "5"}]}
    assert_error(api.post(f"/sessions/{session.pk}/messages", body), 422, "messages.0.input_tokens")
    call = {"tool_name": "t", "is_error": "yes"}
    body = {"messages": [{"role": "assistant", "tool_calls": [call]}]}
    path = "messages.0.tool_calls.0.is_error"
    assert_error(api.post(f"/sessions/{session.pk}/messages", body), 422, path)


def test_it_reads_only_ascii_digits_as_ids(api: ApiClient, session):
    # Found by schemathesis: "¹".isdigit() is true but int("¹") raises.
    for ref in ("¹", "٣", "²³"):
        assert_error(api.get(f"/agents/{ref}"), 404)
        assert_error(api.get(f"/users/{ref}"), 404)
        assert_error(api.get("/memories", {"agent": ref}), 404)
        assert_error(api.get("/sessions", {"agent": ref}), 404)
        assert_error(api.get("/sessions", {"user": ref}), 404)


def test_it_takes_an_integral_float_as_an_integer_like_json_schema(api: ApiClient, session):
    body = {"messages": [{"role": "user", "input_tokens": 12.0}]}
    response = api.post(f"/sessions/{session.pk}/messages", body)
    assert response.status_code == 201
    assert response.json()["items"][0]["input_tokens"] == 12
    body = {"messages": [{"role": "user", "input_tokens": 12.5}]}
    assert_error(api.post(f"/sessions/{session.pk}/messages", body), 422, "messages.0.input_tokens")
