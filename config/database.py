"""How the PostgreSQL connection pool tests a connection before it hands it out."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool


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
