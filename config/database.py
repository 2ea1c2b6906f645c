"""The database beyond the ORM: how the PostgreSQL connection pool tests a connection before it
hands it out, cursors that bind client-side or prepare, the planner's row estimates, and the
bounds of its columns."""

from __future__ import annotations

import math
import select
import time
from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

from django.db import connection, connections
from django.db.backends.utils import CursorWrapper
from django.db.models import Model
from psycopg_pool import ConnectionPool

INT32_MAX = 2**31 - 1  # the largest value of an integer column on every database
# A connection that answered a round trip this recently, and whose socket has nothing unasked
# to read, is handed out without another: a busy pool then costs no round trip per request.
TRUSTED_FOR_SECONDS = 5.0
_answered_at: WeakKeyDictionary[Any, float] = WeakKeyDictionary()


def pool_check(conn: Any) -> None:
    """Raises if `conn` is dead, so the pool replaces it instead of failing a request with it.

    A backend that was terminated, or a server that stopped, says so on the socket (an error
    message, then the end of the stream): that shows without a round trip. A connection that
    has not answered for a while is tried with one, as a firewall may have dropped it silently.
    Whatever killed one idle connection killed its neighbours too: on the first dead one every
    idle connection is tried at once, so the request waiting gets a fresh connection on its
    next try rather than the next dead one."""
    now = time.monotonic()
    if now - _answered_at.get(conn, -math.inf) < TRUSTED_FOR_SECONDS and not _unasked_input(conn):
        return
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)  # set by the pool before it calls this check
        if pool is not None:
            pool.check()
        raise
    _answered_at[conn] = now


def _unasked_input(conn: Any) -> bool:
    """Whether the server sent anything to an idle connection (it never does while all is well:
    Logdeck listens for no notifications)."""
    try:
        poller = select.poll()  # not select(): a busy server's descriptors pass 1024
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except Exception:  # a closed connection has no socket to ask
        return True


def client_binding_cursor() -> CursorWrapper:
    """A cursor on the default PostgreSQL connection that binds values client-side (psycopg's
    ClientCursor), so that one string may hold several statements: one round trip for them all.
    Django's own cursors bind server-side here (settings, `DATABASE_SERVER_SIDE_BINDING`)."""
    from django.db.backends.postgresql.base import Cursor

    connection.ensure_connection()
    raw = Cursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def prepared_cursor() -> CursorWrapper:
    """A cursor on the default PostgreSQL connection whose statements are prepared: planned once
    per connection, then only executed. For the few statements that run on every request and
    cost more to plan than to run; psycopg prepares nothing else (settings)."""
    connection.ensure_connection()
    raw = _prepared_cursor_class()(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


@cache
def _prepared_cursor_class() -> type:
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparedCursor(ServerBindingCursor):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            return super().execute(query, params, **{**kwargs, "prepare": True})

    return PreparedCursor


def planner_row_estimate(model: type[Model], using: str) -> int | None:
    """PostgreSQL's estimate of a table's rows (kept by ANALYZE/autovacuum), or None if unknown."""
    db = connections[using]
    if db.vendor != "postgresql":
        return None
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [db.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    # -1 means "never analysed" (PostgreSQL 14+); 0 may be an empty or a brand-new table.
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])
