"""PostgreSQL read replicas (`DATABASE_REPLICA_URLS`): which database a query goes to.

Everything goes to the primary unless a request was let onto a replica: a GET or HEAD outside
the admin, from a client that has not written within `READ_YOUR_WRITES_SECONDS`. Such a
request's reads go to a replica whose replay lag is within `REPLICA_MAX_LAG_SECONDS` (each
replica's lag is read at most once per `REPLICA_CHECK_SECONDS` per process); with none, the
primary serves. Writes, migrations, commands and the tables of who may do what (people, keys,
logins, sessions, permissions) always use the primary.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


@dataclass
class _Reads:
    """A request let onto a replica, and the one replica its reads use once chosen, so that one
    answer never mixes replicas at different points of replay."""

    alias: str | None = None
    chosen: bool = False


# None by default: only the middleware lets a request's reads onto a replica.
_replica_reads: ContextVar[_Reads | None] = ContextVar("replica_reads", default=None)

# Who may do what is read where it is changed, so a revoked key or a demotion holds at once.
PRIMARY_ONLY_APPS = {"auth", "sessions", "axes", "contenttypes", "admin"}
PRIMARY_ONLY_MODELS = {"agents.user", "agents.apikey", "agents.apikeyfailure"}

# Replay lag in seconds: zero when everything received is replayed (an idle primary is no lag);
# NULL when the replica receives nothing from the primary, as then it cannot know how far behind
# it falls (reading pg_stat_wal_receiver's status needs a superuser or pg_read_all_stats).
LAG_SQL = (
    "SELECT CASE "
    "WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN NULL "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
)


@dataclass
class ReplicaState:
    alias: str
    lag: float | None  # None: unreachable, or not streaming from the primary
    error: str
    checked_at: float

    @property
    def usable(self) -> bool:
        return self.lag is not None and self.lag <= settings.REPLICA_MAX_LAG_SECONDS


_states: dict[str, ReplicaState] = {}


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias.startswith("replica")]


def replica_check(alias: str) -> ReplicaState:
    """Read `alias`'s replay lag now; a replica unreachable or not streaming has none."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(LAG_SQL)
            lag = cursor.fetchone()[0]
        if lag is None:
            state = ReplicaState(alias, None, "not streaming from the primary", time.monotonic())
        else:
            state = ReplicaState(alias, float(lag), "", time.monotonic())
    except Exception as exc:  # any failure means: not this replica, for now
        connections[alias].close()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        state = ReplicaState(alias, None, f"unreachable: {reason}", time.monotonic())
    previous = _states.get(alias)
    if previous is None or previous.usable != state.usable:
        logger.warning(
            "Replica %s is %s",
            alias,
            f"usable (lag {state.lag:.2f} s)" if state.usable else f"skipped: {_why(state)}",
        )
    _states[alias] = state
    return state


def _why(state: ReplicaState) -> str:
    if state.lag is None:
        return state.error
    return f"lag {state.lag:.2f} s over {settings.REPLICA_MAX_LAG_SECONDS} s"


def replica_states() -> list[ReplicaState]:
    """Every replica's state, read now (for status and readiness)."""
    return [replica_check(alias) for alias in replica_aliases()]


def replica_report() -> dict[str, dict[str, Any]]:
    """Each replica's state as /readyz shows it: reachable, lag, serving reads or skipped."""
    return {
        state.alias: {
            "reachable": state.lag is not None,
            "lag_s": None if state.lag is None else round(state.lag, 3),
            "serving": state.usable,
        }
        for state in replica_states()
    }


def replica_for_reads() -> str | None:
    """A usable replica, by each one's state of the last `REPLICA_CHECK_SECONDS`, or None."""
    now = time.monotonic()
    usable = []
    for alias in replica_aliases():
        state = _states.get(alias)
        if state is None or now - state.checked_at >= settings.REPLICA_CHECK_SECONDS:
            state = replica_check(alias)
        if state.usable:
            usable.append(alias)
    return random.choice(usable) if usable else None


class ReplicaRouter:
    """Reads on a replica only where the middleware allowed it; everything else on the primary."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        reads = _replica_reads.get()
        opts = model._meta
        if (
            reads is None
            or opts.app_label in PRIMARY_ONLY_APPS
            or opts.label_lower in PRIMARY_ONLY_MODELS
        ):
            return DEFAULT_DB_ALIAS
        if not reads.chosen:
            reads.alias, reads.chosen = replica_for_reads(), True
        return reads.alias or DEFAULT_DB_ALIAS

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        return True  # the replicas hold the primary's rows

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _writer_key(request: HttpRequest) -> str | None:
    # The client, as one key that every instance computes alike: its API key, or its login.
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "ryw:key:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"ryw:user:{user.pk}"
    return None


class ReadYourWritesMiddleware:
    """Lets a read-only request's reads onto a replica, unless its client wrote within
    `READ_YOUR_WRITES_SECONDS` (kept in the cache, so all instances sharing Redis agree);
    after a write, that client's reads go to the primary for that window."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not replica_aliases():
            return self.get_response(request)
        writing = request.method not in SAFE_METHODS
        allowed = not writing and not request.path.startswith("/admin/")
        if allowed:
            key = _writer_key(request)
            allowed = key is None or cache.get(key) is None
        token = _replica_reads.set(_Reads() if allowed else None)
        try:
            response = self.get_response(request)
        finally:
            _replica_reads.reset(token)
        if writing and response.status_code < 500:
            key = _writer_key(request)  # after a login, the user it logged in
            if key is not None:
                cache.set(key, 1, timeout=settings.READ_YOUR_WRITES_SECONDS)
        return response
