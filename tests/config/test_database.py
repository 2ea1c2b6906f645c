"""The pool's check of a connection before it is handed out (config/database.py), on a real
PostgreSQL: a connection that answered moments ago costs no round trip, a backend terminated
since then is caught at once, and one quiet for long is tried with a round trip."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from config import database

pytestmark = pytest.mark.postgres


@pytest.fixture
def raw(db) -> Iterator[psycopg.Connection]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**{**params, "autocommit": True}) as conn:
        yield conn


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    real = ConnectionPool.check_connection

    def counted(conn: psycopg.Connection) -> None:
        calls.append(conn)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    return calls


def test_a_connection_that_just_answered_costs_no_round_trip(raw, round_trips) -> None:
    database.pool_check(raw)
    database.pool_check(raw)
    database.pool_check(raw)
    assert len(round_trips) == 1


def test_a_backend_terminated_since_is_caught_without_waiting(raw, round_trips) -> None:
    database.pool_check(raw)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [raw.info.backend_pid])
    deadline = time.monotonic() + 5
    while not database._unasked_input(raw) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(psycopg.OperationalError):
        database.pool_check(raw)
    assert len(round_trips) == 2


def test_a_connection_quiet_for_long_is_tried_again(raw, round_trips, monkeypatch) -> None:
    database.pool_check(raw)
    later = time.monotonic() + database.TRUSTED_FOR_SECONDS + 1
    monkeypatch.setattr(database.time, "monotonic", lambda: later)
    database.pool_check(raw)
    assert len(round_trips) == 2
