"""Timing: warm-up, repetitions, median and p95, and the SQL query count of one more run."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch


class NotThere(Exception):
    """The page is not built (yet) on this branch: its row says n/a."""


@dataclass
class Figure:
    """One side of a measurement: Logdeck, stock or floor."""

    median_ms: float | None = None
    p95_ms: float | None = None
    queries: int | None = None
    note: str = ""  # "n/a: ..." or "error: ..." when there is no figure
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.median_ms is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_ms": self.median_ms,
            "p95_ms": self.p95_ms,
            "queries": self.queries,
            "note": self.note,
            **self.extra,
        }


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile: with few samples, p95 is the slowest but honest."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def timed(call: Callable[[], Any], *, warmup: int, repeat: int) -> Figure:
    """Run `call` warm-up times, then `repeat` timed times, then once counting SQL queries."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        call()
    return Figure(
        median_ms=round(statistics.median(samples), 3),
        p95_ms=round(percentile(samples, 0.95), 3),
        queries=len(queries),
        extra={"samples_ms": [round(s, 3) for s in samples]},
    )


def page(client: Client, url: Callable[[], str], headers: dict[str, str] | None = None):
    """A GET through the test client that must answer 200; 404 means not built (n/a)."""

    def call() -> None:
        response = client.get(url(), headers=headers or {})
        if response.status_code == 404:
            raise NotThere("404")
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)

    return call


def measure(call: Callable[[], Any] | None, *, warmup: int, repeat: int) -> Figure:
    """A figure for `call`, or a row note saying why there is none; the run always goes on."""
    if call is None:
        return Figure(note="—")
    try:
        return timed(call, warmup=warmup, repeat=repeat)
    except NotThere as exc:
        return Figure(note=f"n/a ({exc})")
    except NoReverseMatch:
        return Figure(note="n/a (no such URL)")
    except Exception as exc:  # one broken row must not stop the run
        return Figure(note=f"error: {exc}"[:120])


def floor(conn: psycopg.Connection, sql: str, params: list[Any] | None = None):
    """The bare query through psycopg, all rows fetched: what no framework can beat."""

    def call() -> None:
        with conn.cursor() as cursor:
            cursor.execute(sql, params or [])
            cursor.fetchall()

    return call


def floor_counted(call: Callable[[], Any], *, warmup: int, repeat: int, queries: int) -> Figure:
    """A floor timing (its queries are known: they are written out, not captured)."""
    figure = measure(call, warmup=warmup, repeat=repeat)
    if figure.ok:
        figure.queries = queries
    return figure
