"""The database beyond the ORM: how the PostgreSQL connection pool tests a connection before it
hands it out, the planner's row estimates, and the bounds of its columns."""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.models import Model
from psycopg_pool import ConnectionPool

INT32_MAX = 2**31 - 1  # the largest value of an integer column on every database


def pool_check(conn: Any) -> None:
    """Raises if `conn` is dead, so the pool replaces it instead of failing a request with it.

    Whatever killed one idle connection (a restart, a failover, terminated backends) killed its
    neighbours too: on the first dead one every idle connection is tried at once, so the request
    waiting gets a fresh connection on its next try rather than the next dead one."""
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)  # set by the pool before it calls this check
        if pool is not None:
            pool.check()
        raise


def planner_row_estimate(model: type[Model], using: str) -> int | None:
    """PostgreSQL's estimate of a table's rows (kept by ANALYZE/autovacuum), or None if unknown."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    # -1 means "never analysed" (PostgreSQL 14+); 0 may be an empty or a brand-new table.
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])
