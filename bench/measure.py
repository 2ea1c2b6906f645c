"""Timing: warm-up, repetitions, median and p95, and the SQL query count of one more run."""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import connection
from django.http.response import HttpResponseBase
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


def measure_together(
    calls: dict[str, Callable[[], Any] | None], *, warmup: dict[str, int], repeat: int
) -> dict[str, Figure]:
    """A figure for each call, timed in turns: after the warm-ups, each round runs every call
    once, so a slow spell of a shared machine falls on every side of a row alike rather than on
    whichever side was being timed. Then each runs once more, counting its SQL queries. A call
    that fails gets a note saying why, and the others go on."""
    figures: dict[str, Figure] = {}
    live: dict[str, Callable[[], Any]] = {}
    for side, call in calls.items():
        if call is None:
            figures[side] = Figure(note="—")
            continue
        try:
            for _ in range(warmup.get(side, 0)):
                call()
        except Exception as exc:  # one broken side must not stop the row, nor the run
            figures[side] = _failed(exc)
        else:
            live[side] = call
    samples: dict[str, list[float]] = {side: [] for side in live}
    for _ in range(repeat):
        for side, call in list(live.items()):
            started = time.perf_counter()
            try:
                call()
            except Exception as exc:
                figures[side] = _failed(exc)
                del live[side]
                continue
            samples[side].append((time.perf_counter() - started) * 1000)
    for side, call in live.items():
        try:
            with CaptureQueriesContext(connection) as queries:
                call()
        except Exception as exc:
            figures[side] = _failed(exc)
            continue
        figures[side] = Figure(
            median_ms=round(statistics.median(samples[side]), 3),
            p95_ms=round(percentile(samples[side], 0.95), 3),
            queries=len(queries),
            extra={"samples_ms": [round(s, 3) for s in samples[side]]},
        )
    return {side: figures[side] for side in calls}


def _failed(exc: Exception) -> Figure:
    """The note for a measurement that could not be taken: the page is not built, or broke."""
    if isinstance(exc, NotThere):
        return Figure(note=f"n/a ({exc})")
    if isinstance(exc, NoReverseMatch):
        return Figure(note="n/a (no such URL)")
    return Figure(note=f"error: {exc}"[:120])


def page(client: Client, url: Callable[[], str], headers: dict[str, str] | None = None):
    """A GET through the test client that must answer 200 (the call returns the response); 404
    means not built (n/a)."""

    def call() -> HttpResponseBase:
        response = client.get(url(), headers=headers or {})
        if response.status_code == 404:
            raise NotThere("404")
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
        return response

    return call


TABLE_BODY = re.compile(r"<tbody[^>]*>(.*?)</tbody>", re.S)
TABLE_ROW = re.compile(r"<tr(?![^>]*load-more)[\s>]")  # a "load more" row shows no record
MESSAGE = re.compile(r'<article class="msg[\s"]')


def shown_rows(response: Any) -> int | None:
    """How many records a page shows: an API list's items, a transcript's messages, or the rows
    of its tables. A page of 4 rows and one of 50 are not the same work, whatever the scale."""
    if not isinstance(response, HttpResponseBase) or getattr(response, "streaming", False):
        return None
    if response.headers.get("Content-Type", "").startswith("application/json"):
        body = json.loads(response.content)
        items = body.get("items") if isinstance(body, dict) else None
        return len(items) if isinstance(items, list) else None
    html = response.content.decode()
    if messages := MESSAGE.findall(html):
        return len(messages)
    bodies = TABLE_BODY.findall(html)
    return sum(len(TABLE_ROW.findall(body)) for body in bodies) if bodies else None


def floor(conn: psycopg.Connection, sql: str, params: list[Any] | None = None):
    """The bare query through psycopg, all rows fetched: what no framework can beat."""

    def call() -> None:
        with conn.cursor() as cursor:
            cursor.execute(sql, params or [])
            cursor.fetchall()

    return call
