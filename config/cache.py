"""The Redis cache, with this process's memory standing in while Redis cannot be reached.

Everything Logdeck caches (agent configurations, the console's aggregates, read-your-writes
marks) can be rebuilt from the database or done without, so an unreachable Redis must not fail
a request: each call falls back to a local memory cache, Redis is tried again every few
seconds, and the outage is logged as a warning at most once a minute, not per request. Keys
deleted during the outage (an agent changed) are deleted from Redis again when it answers, so it
serves nothing stale afterwards; the local copies live at most a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0  # how long to use the local cache before trying Redis again
WARN_EVERY_SECONDS = 60.0
LOCAL_MAX_SECONDS = 60  # a local entry lives at most this long (other processes cannot drop it)
MISSED_DELETES_MAX = 10_000

_UNREACHABLE = (RedisError, OSError)
_clock = time.monotonic  # a module attribute, so tests can move time


class FallbackRedisCache(RedisCache):
    """Django's RedisCache; while Redis is unreachable, a LocMemCache of this process."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._local = LocMemCache(
            "logdeck-redis-fallback",
            {"TIMEOUT": min(self.default_timeout or LOCAL_MAX_SECONDS, LOCAL_MAX_SECONDS)},
        )
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._warned_at: float | None = None
        self._missed_deletes: set[tuple[str, int | None]] = set()

    def ping(self) -> None:
        """Raises unless Redis answers now (the readiness check; never falls back)."""
        self._cache.get_client(write=True).ping()

    # --- the outage bookkeeping ------------------------------------------------------------

    def _redis_usable(self) -> bool:
        if _clock() < self._down_until:
            return False
        if self._missed_deletes:
            self._replay_deletes()
        return _clock() >= self._down_until

    def _went_down(self, exc: BaseException) -> None:
        now = _clock()
        with self._lock:
            self._down_until = now + RETRY_SECONDS
            if self._warned_at is None or now - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = now
                warn = True
            else:
                warn = False
        if warn:
            logger.warning(
                "Redis is unreachable (%s); serving from the database with this process's "
                "memory as the cache, retrying every %.0f s.",
                type(exc).__name__,
                RETRY_SECONDS,
            )

    def _replay_deletes(self) -> None:
        with self._lock:
            pending, self._missed_deletes = self._missed_deletes, set()
        try:
            for key, version in pending:
                super().delete(key, version=version)
        except _UNREACHABLE as exc:
            with self._lock:
                self._missed_deletes |= pending
            self._went_down(exc)
        else:
            logger.warning("Redis answers again; %d keys changed meanwhile dropped.", len(pending))

    def _local_timeout(self, timeout: Any) -> Any:
        if timeout is DEFAULT_TIMEOUT or timeout is None:
            return LOCAL_MAX_SECONDS
        return min(timeout, LOCAL_MAX_SECONDS)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._redis_usable():
            try:
                return getattr(super(), name)(*args, **kwargs)
            except _UNREACHABLE as exc:
                self._went_down(exc)
        return getattr(self._local, name)(*args, **kwargs)

    # --- the cache API -------------------------------------------------------------------

    def add(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        if self._redis_usable():
            try:
                return super().add(key, value, timeout, version)
            except _UNREACHABLE as exc:
                self._went_down(exc)
        return self._local.add(key, value, self._local_timeout(timeout), version)

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        if self._redis_usable():
            try:
                return super().set(key, value, timeout, version)
            except _UNREACHABLE as exc:
                self._went_down(exc)
        return self._local.set(key, value, self._local_timeout(timeout), version)

    def set_many(
        self, data: dict[str, Any], timeout: Any = DEFAULT_TIMEOUT, version: Any = None
    ) -> Any:
        if self._redis_usable():
            try:
                return super().set_many(data, timeout, version)
            except _UNREACHABLE as exc:
                self._went_down(exc)
        return self._local.set_many(data, self._local_timeout(timeout), version)

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: Any = None) -> Any:
        if self._redis_usable():
            try:
                return super().touch(key, timeout, version)
            except _UNREACHABLE as exc:
                self._went_down(exc)
        return self._local.touch(key, self._local_timeout(timeout), version)

    def delete(self, key: str, version: Any = None) -> Any:
        self._local.delete(key, version=version)
        if self._redis_usable():
            try:
                return super().delete(key, version=version)
            except _UNREACHABLE as exc:
                self._went_down(exc)
        self._remember_delete(key, version)
        return False

    def delete_many(self, keys: Any, version: Any = None) -> Any:
        keys = list(keys)
        self._local.delete_many(keys, version=version)
        if self._redis_usable():
            try:
                return super().delete_many(keys, version=version)
            except _UNREACHABLE as exc:
                self._went_down(exc)
        for key in keys:
            self._remember_delete(key, version)
        return None

    def _remember_delete(self, key: str, version: Any) -> None:
        with self._lock:
            if len(self._missed_deletes) < MISSED_DELETES_MAX:
                self._missed_deletes.add((key, version))
            else:
                logger.warning("Redis unreachable: too many changed keys to drop later: %s", key)

    def get(self, key: str, default: Any = None, version: Any = None) -> Any:
        return self._call("get", key, default, version)

    def get_many(self, keys: Any, version: Any = None) -> Any:
        return self._call("get_many", list(keys), version)

    def has_key(self, key: str, version: Any = None) -> Any:
        return self._call("has_key", key, version)

    def incr(self, key: str, delta: int = 1, version: Any = None) -> Any:
        return self._call("incr", key, delta, version)

    def clear(self) -> Any:
        self._local.clear()
        return self._call("clear")
