"""The 503 answers themselves, for an error the driver really raised: a connection to a
database that is not there (a closed port on PostgreSQL, a missing folder on SQLite)."""

from __future__ import annotations

import json
import sys

import pytest
from django.db import OperationalError, connection, connections
from django.test import RequestFactory

from config.unavailable import DatabaseUnavailableMiddleware, server_error
from tests.production.live import free_port

pytestmark = pytest.mark.django_db


def _connect_to_nowhere() -> None:
    settings = {**connection.settings_dict}
    if connection.vendor == "postgresql":
        options = {k: v for k, v in settings["OPTIONS"].items() if k != "pool"}
        settings |= {"HOST": "127.0.0.1", "PORT": free_port(), "OPTIONS": options}
    else:
        settings["NAME"] = "/nonexistent-logdeck-folder/db.sqlite3"
    nowhere = type(connections["default"])(settings, alias="default")  # a wrapper of its own
    try:
        nowhere.ensure_connection()
    finally:
        nowhere.close()


def test_the_driver_really_fails_here():
    with pytest.raises(OperationalError):
        _connect_to_nowhere()


@pytest.mark.parametrize("path", ["/sessions/", "/admin/sessions_app/session/"])
def test_it_answers_a_styled_503_page_for_the_console_and_the_admin(path: str):
    request = RequestFactory().get(path)
    try:
        _connect_to_nowhere()
    except OperationalError as exc:
        response = DatabaseUnavailableMiddleware(lambda r: None).process_exception(request, exc)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    html = response.content.decode()
    assert "cannot reach its database" in html and "logdeck.css" in html
    assert "<script" not in html  # no request context, no nonce: no script at all


def test_it_answers_the_api_error_shape_under_api():
    request = RequestFactory().post("/api/v1/sessions")
    try:
        _connect_to_nowhere()
    except OperationalError as exc:
        response = DatabaseUnavailableMiddleware(lambda r: None).process_exception(request, exc)

    assert response.status_code == 503 and response["Retry-After"] == "5"
    body = json.loads(response.content)
    assert body["error"]["code"] == "unavailable"
    assert set(body["error"]) == {"code", "message", "fields"}


def test_it_leaves_other_errors_to_django():
    request = RequestFactory().get("/sessions/")
    middleware = DatabaseUnavailableMiddleware(lambda r: None)
    assert middleware.process_exception(request, ValueError("a bug")) is None


def test_its_500_handler_is_a_503_when_the_database_failed_outside_a_view():
    # Django calls handler500 while the exception is being handled (a middleware that saves the
    # login session, after the view): the same 503 then, and the styled 500 for anything else.
    request = RequestFactory().get("/sessions/")
    try:
        _connect_to_nowhere()
    except OperationalError:
        assert sys.exc_info()[0] is OperationalError
        unavailable = server_error(request)
    try:
        raise ValueError("a bug")
    except ValueError:
        broken = server_error(request)

    assert unavailable.status_code == 503 and unavailable["Retry-After"] == "5"
    assert broken.status_code == 500
    assert "Something broke on our side" in broken.content.decode()
