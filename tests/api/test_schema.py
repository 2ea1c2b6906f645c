"""The schema: valid OpenAPI 3, every operation tested, every status it can answer declared."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from config.api import api as ninja_api
from tests.api.conftest import ApiClient, assert_error
from tests.api.operations import LABELS

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
    anon_api: ApiClient, api: ApiClient, operator_client, end_user
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
