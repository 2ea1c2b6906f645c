"""The schema: valid OpenAPI 3, every operation tested, every status it can answer declared."""

from __future__ import annotations

import json
import re

import pytest
from openapi_spec_validator import validate

from config.urls import api as ninja_api  # with the routers the URLs mount
from tests.api.conftest import ApiClient, assert_error
from tests.api.operations import LABELS
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db


def _schema() -> dict:
    # Through JSON, as clients see it (status codes become strings).
    return json.loads(json.dumps(ninja_api.get_openapi_schema()))


def test_it_serves_a_schema_that_validates_as_openapi_3(api: ApiClient):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    validate(schema)


def test_it_names_every_body_schema_once():
    # Ninja names a component by its class name: two classes of one name would publish one
    # operation's body under the other's (the sessions' and the threads' prune once did).
    schema = _schema()

    def body(path: str) -> set[str]:
        ref = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        name = ref["schema"]["$ref"].rsplit("/", 1)[1]
        return set(schema["components"]["schemas"][name]["properties"])

    assert "older_than_days" in body("/api/v1/sessions/prune")
    assert "thread_ids" in body("/api/v1/threads/prune")


def test_it_tests_every_operation_in_the_schema():
    in_schema = {
        f"{method.upper()} {path.removeprefix('/api/v1')}"
        for path, item in _schema()["paths"].items()
        for method in item
    }
    assert in_schema == set(LABELS)


def test_it_declares_the_error_statuses_of_every_operation():
    for path, item in _schema()["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert {"401", "403", "422", "429"} <= codes, (method, path)
            if method in {"post", "patch"}:
                assert {"400", "409", "413"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            error = op["responses"]["401"]["content"]["application/json"]["schema"]
            assert error["$ref"].endswith("/ErrorOut")


def test_it_never_uses_all_fields_schemas():
    for name, component in _schema()["components"]["schemas"].items():
        assert "__all__" not in str(component), name


def test_it_shows_the_schema_and_docs_only_to_staff_or_key_holders(
    anon_api: ApiClient, api: ApiClient, operator_client, outsider_client, end_user
):
    from django.test import Client

    assert_error(anon_api.get("/openapi.json"), 401)
    assert_error(ApiClient("ldk_00000000_wrong").get("/openapi.json"), 401)
    docs = anon_api.get("/docs")
    assert docs.status_code == 302 and "/accounts/login/" in docs["Location"]
    assert api.get("/openapi.json").status_code == 200
    assert operator_client.get("/api/v1/openapi.json").status_code == 200
    customer = Client()
    customer.force_login(end_user)
    assert customer.get("/api/v1/openapi.json").status_code == 401
    # Staff with no role may read nothing, the schema included.
    assert outsider_client.get("/api/v1/openapi.json").status_code == 401


def _walk(node, path=""):
    """Every (path, schema object) in the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def _property(schema: dict, component: str, name: str) -> dict:
    prop = schema["components"]["schemas"][component]["properties"][name]
    return next((s for s in prop.get("anyOf", [prop]) if s.get("type") != "null"), prop)


def test_it_publishes_bounds_as_minimum_and_maximum():
    # Pydantic's own names (ge, le, gt, lt) mean nothing to an OpenAPI client.
    schema = _schema()
    named = [path for path, node in _walk(schema) if {"ge", "le", "gt", "lt"} & set(node)]
    assert not named, named
    for component, name in (("ToolCallBody", "duration_ms"), ("MessageBody", "input_tokens")):
        bounds = _property(schema, component, name)
        assert (bounds["minimum"], bounds["maximum"]) == (0, 2**31 - 1), (component, name)


def test_it_describes_json_payloads_without_nul_at_any_depth():
    schema = _schema()
    json_value = schema["components"]["schemas"]["JsonValue"]
    kinds = {branch.get("type") for branch in json_value["anyOf"]}
    assert kinds == {"string", "number", "boolean", "null", "array", "object"}
    (obj,) = [b for b in json_value["anyOf"] if b.get("type") == "object"]
    assert obj["propertyNames"] == {"pattern": "^[^\\x00]*$"}
    assert obj["additionalProperties"] == {"$ref": "#/components/schemas/JsonValue"}
    metadata = _property(schema, "SessionStartIn", "metadata")
    assert metadata["propertyNames"] == {"pattern": "^[^\\x00]*$"}
    refs = [p for p, node in _walk(schema) if node.get("$ref", "").endswith("/JsonValue")]
    assert len(refs) > 5


def test_it_accepts_every_email_its_pattern_allows_and_refuses_others(api: ApiClient):
    email = _property(_schema(), "UserUpsertIn", "email")
    pattern, control = email["pattern"], email["not"]["pattern"]
    for address in ("a@b.co", "o'neil+tag@mail.example.museum", "x_y-z.w@a-b.c-d.io"):
        assert re.search(pattern, address) and not re.search(control, address), address
        response = api.post("/users", {"email": address})
        assert response.status_code == 201, (address, response.content)
    for address in ("0@0.a", "a@b", ".a@b.co", "a..b@c.co", "a@-b.co", "a@b.co\n", "a b@c.co"):
        assert not re.search(pattern, address) or re.search(control, address), address
        assert_error(api.post("/users", {"email": address}), 422, "email")


def test_it_refuses_what_its_time_schema_refuses_and_takes_the_rest(api: ApiClient):
    AgentFactory(name="support-bot")
    moment = _property(_schema(), "SessionStartIn", "created_at")
    unstorable = moment["not"]["pattern"]
    for refused in (
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:00:00-02:00",
        "2020-06-30T23:59:60Z",
    ):
        assert re.search(unstorable, refused)
        body = {"agent": "support-bot", "created_at": refused}
        assert_error(api.post("/sessions", body), 422, "created_at")
    for taken in ("0001-01-02T00:30:00+01:00", "2020-06-30t23:59:59.1234567z"):
        assert not re.search(unstorable, taken)
        response = api.post("/sessions", {"agent": "support-bot", "created_at": taken})
        assert response.status_code == 201, (taken, response.content)


def test_it_publishes_a_name_pattern_that_refuses_what_the_services_strip_away():
    import re

    from config.api_schemas import NAME_PATTERN

    spaces = [chr(c) for c in range(0x10000) if chr(c).isspace()]
    for space in spaces:
        assert re.fullmatch(NAME_PATTERN, space * 3) is None, hex(ord(space))
        assert re.fullmatch(NAME_PATTERN, f"{space}bot{space}"), hex(ord(space))
    assert re.fullmatch(NAME_PATTERN, "bot\x00") is None


def test_it_refuses_a_name_of_spaces_alone_by_the_schema(api: ApiClient):
    for name in ("\x85", " \u3000 ", "\x1c"):
        refused = assert_error(api.post("/agents", {"name": name}), 422, "name")
        assert "other than spaces" in refused["fields"][0]["message"]
    assert api.post("/agents", {"name": "\x85bot"}).status_code == 201
