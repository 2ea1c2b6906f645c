"""API actors: keys of every kind, and a client that speaks JSON with a bearer key."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import ApiKey, User
from agents.services import IssuedKey, api_key_create, api_key_revoke


class ApiClient:
    """The Django test client with `Authorization: Bearer <key>` and JSON bodies."""

    def __init__(self, secret: str | None = None, client: Client | None = None) -> None:
        self.client = client or Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        url = path if path.startswith("/api/") else f"/api/v1{path}"
        data = kwargs.pop("raw", None)
        if data is None and body is not None:
            data = json.dumps(body)
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.generic(
            method,
            url,
            data=data or "",
            content_type="application/json",
            headers=headers,
            **kwargs,
        )

    def get(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        url = path if path.startswith("/api/") else f"/api/v1{path}"
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.get(url, params or {}, headers=headers, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def assert_error(response: Any, status: int, *paths: str) -> dict[str, Any]:
    """The response is the one error shape with this status, naming these field paths."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["message"]
    found = [f["path"] for f in body["error"]["fields"]]
    for path in paths:
        assert path in found, (path, found)
    return body["error"]


def _recently_used(issued: IssuedKey) -> str:
    # As if used a moment ago, so no test's query count includes the throttled last_used_at write.
    ApiKey.objects.filter(pk=issued.api_key.pk).update(last_used_at=timezone.now())
    return issued.secret


@pytest.fixture
def write_secret(operator: User) -> str:
    return _recently_used(api_key_create(user=operator, scope="write", name="runtime"))


@pytest.fixture
def read_secret(operator: User) -> str:
    return _recently_used(api_key_create(user=operator, scope="read", name="dashboard"))


@pytest.fixture
def revoked_secret(operator: User) -> str:
    issued = api_key_create(user=operator, scope="write")
    api_key_revoke(api_key=issued.api_key)
    return issued.secret


@pytest.fixture
def expired_secret(operator: User) -> str:
    past = timezone.now() - dt.timedelta(minutes=1)
    return api_key_create(user=operator, scope="write", expires_at=past).secret


@pytest.fixture
def api(write_secret: str) -> ApiClient:
    return ApiClient(write_secret)


@pytest.fixture
def read_api(read_secret: str) -> ApiClient:
    return ApiClient(read_secret)


@pytest.fixture
def anon_api(db: None) -> ApiClient:
    return ApiClient()
