"""Rates rather than latencies: ingestion (API batch append, seed_demo, COPY, bulk_create) and
backup/restore (the README's dumpdata, `manage.py restore` and stock `loaddata`), with peak memory
of each command measured on its own process."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from django.db import transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from bench.measure import Figure, percentile
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import Message, ToolCall
from sessions_app.services import (
    MESSAGE_FIELDS,
    TOOL_CALL_FIELDS,
    session_delete,
    session_start,
)

ROOT = Path(__file__).resolve().parent.parent
BACKUP_COMMAND = [
    "dumpdata",
    "--format",
    "jsonl",
    "--natural-foreign",
    "-e",
    "contenttypes",
    "-e",
    "auth.permission",
    "-e",
    "sessions",
    "-o",
]
BATCH = 100


@dataclass
class Run:
    seconds: float
    peak_mb: float
    output: str


def manage(args: list[str], *, database_url: str) -> Run:
    """`manage.py <args>` in its own process against `database_url`, timed."""
    env = {**os.environ, "DATABASE_URL": database_url}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode:
        raise RuntimeError(f"manage.py {args[0]} failed: {output.strip()[-400:]}")
    return Run(seconds=time.perf_counter() - started, peak_mb=float("nan"), output=output)


def _peak_from(output: str) -> float:
    for line in output.splitlines():
        if line.startswith("LOGDECK_PEAK_KB="):
            return int(line.split("=", 1)[1]) / 1024
    return float("nan")


def manage_measured(args: list[str], *, database_url: str) -> Run:
    """Like `manage`, with the peak memory read by GNU time's %M for that one process."""
    if not Path("/usr/bin/time").exists():
        return manage(args, database_url=database_url)
    env = {**os.environ, "DATABASE_URL": database_url}
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "LOGDECK_PEAK_KB=%M", sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode:
        raise RuntimeError(f"manage.py {args[0]} failed: {output.strip()[-400:]}")
    return Run(seconds=seconds, peak_mb=_peak_from(output), output=output)


# --- scratch databases -------------------------------------------------------------------------
class Scratch:
    """Fresh, migrated, empty databases beside the benchmark's, cloned from a migrated template."""

    def __init__(self, admin_url: str, base_url: str, name: str) -> None:
        self.admin_url = admin_url  # a URL to the `postgres` maintenance database
        self.base_url = base_url.rsplit("/", 1)[0]
        self.template = f"{name}_template"
        self.prefix = name

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def _execute(self, *statements: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql)

    def prepare_template(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [self.template]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.template}"')
        # Always: after a merge brings new migrations the template must have them too.
        manage(["migrate", "--noinput", "-v", "0"], database_url=self.url(self.template))

    def fresh(self, suffix: str) -> str:
        name = f"{self.prefix}_{suffix}"
        self._execute(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"',
        )
        return self.url(name)

    def drop(self, suffix: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{self.prefix}_{suffix}" WITH (FORCE)')


# --- ingestion -----------------------------------------------------------------------------
def batch_messages(start: int) -> list[dict[str, Any]]:
    """100 messages, every third an assistant tool use with a call, one call in twenty failing."""
    messages = []
    for i in range(start, start + BATCH):
        message: dict[str, Any] = {
            "role": "user" if i % 2 == 0 else "assistant",
            "content_type": "text",
            "text_content": f"Message {i}: where is my order {i * 7}?",
        }
        if i % 3 == 0:
            failing = i % 20 == 0
            message["role"] = "assistant"
            message["content_type"] = "tool_use"
            message["tool_calls"] = [
                {
                    "tool_name": "lookup_order",
                    "call_id": f"call_{i}",
                    "input": {"order": i * 7},
                    "output": None if failing else {"status": "shipped"},
                    "state": "failed" if failing else "completed",
                    "is_error": failing,
                    "error_message": f"Order {i * 7} not found" if failing else "",
                }
            ]
        messages.append(message)
    return messages


def batch_body(start: int) -> str:
    """The JSON body of one batch append: `batch_messages(start)`."""
    return json.dumps({"messages": batch_messages(start)})


def api_append(client: Client, write_key: str, *, warmup: int, repeat: int) -> Figure:
    """Messages per second through POST /api/v1/sessions/{id}/messages, 100 per request."""
    agent = Agent.objects.order_by("pk").first()
    session = session_start(agent=agent, name="ingest (benchmark, deleted after)")
    headers = {"Authorization": f"Bearer {write_key}"}
    url = f"/api/v1/sessions/{session.pk}/messages"
    position = 0

    def post() -> float:
        """One batch appended; the seconds it took, the client's building of the body not
        included."""
        nonlocal position
        body = batch_body(position)
        started = time.perf_counter()
        response = client.post(url, body, content_type="application/json", headers=headers)
        seconds = time.perf_counter() - started
        position += BATCH
        if response.status_code == 404:
            raise LookupError("404")
        if response.status_code not in (200, 201):
            raise RuntimeError(f"HTTP {response.status_code}: {response.content[:200]!r}")
        return seconds

    try:
        for _ in range(warmup):
            post()
        samples = [post() for _ in range(repeat)]
        with CaptureQueriesContext(transaction.get_connection()) as queries:
            post()
    except LookupError:
        return Figure(note="n/a (404)")
    except Exception as exc:  # one broken row must not stop the run
        return Figure(note=f"error: {exc}"[:120])
    finally:
        session_delete(session_id=session.pk)
    median = sorted(samples)[len(samples) // 2]
    return Figure(
        median_ms=round(median * 1000, 3),
        p95_ms=round(percentile(samples, 0.95) * 1000, 3),
        queries=len(queries),
        extra={"rate": round(BATCH / median), "unit": "msgs/s"},
    )


# The floor and the stock figure store what the API's batches store: the same messages with the
# same tool calls (a third of the messages have one), so that every side does the same work.
# The columns a batch gives a value (the rest keep their defaults); ids are drawn apart.
MESSAGE_COPY_COLUMNS = tuple(
    f for f in MESSAGE_FIELDS if f not in {"id", "input_tokens", "output_tokens", "raw"}
)
CALL_COPY_COLUMNS = tuple(
    f for f in TOOL_CALL_FIELDS if f not in {"id", "message_id", "approval", "duration_ms"}
)
AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

type Row = dict[str, Any]


def _batch_rows(session_id: uuid.UUID, agent_id: int, count: int) -> list[tuple[Row, list[Row]]]:
    """The first `count` messages of the API's batches, each with its tool calls, as the fields
    of their rows (without ids)."""
    rows = []
    for start in range(0, count, BATCH):
        for seq, message in enumerate(batch_messages(start)[: count - start], start):
            fields = {name: message.get(name, "") for name in MESSAGE_COPY_COLUMNS}
            fields.update(session_id=session_id, agent_id=agent_id, seq=seq, created_at=AT)
            calls = []
            for call in message.get("tool_calls", []):
                failing = call["is_error"]
                calls.append(
                    {
                        **call,
                        "session_id": session_id,
                        "agent_id": agent_id,
                        "error_fingerprint": error_fingerprint(call["error_message"])
                        if failing
                        else "",
                        "created_at": AT,
                        "finished_at": AT,
                    }
                )
            rows.append((fields, calls))
    return rows


# The foreign keys are DEFERRABLE INITIALLY DEFERRED: PostgreSQL checks them at COMMIT, so a load
# that is rolled back never pays for them, while every append that is measured commits and does.
# Both rates below end with the checks a commit would run, then roll back.
CHECK_DEFERRED = "SET CONSTRAINTS ALL IMMEDIATE"


def _text(value: Any) -> str | None:
    """A JSON column's value as COPY's text, NULL for None."""
    return None if value is None else json.dumps(value)


def copy_rate(database_url: str, rows: int = 20_000) -> Figure:
    """Messages per second through COPY of the API batches' messages and tool calls, foreign keys
    checked, in a transaction rolled back afterwards. The rows are built before the clock starts.
    The rate of the messages alone, without their tool calls, is kept as `messages_only_rate`."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT id FROM agents_agent ORDER BY id LIMIT 1")
        agent_id = cursor.fetchone()[0]
        session_id = uuid.uuid4()
        cursor.execute(
            "INSERT INTO sessions_app_session (id, agent_id, name, platform, metadata, created_at,"
            " updated_at, last_activity_at, message_count, tool_call_count, error_count) VALUES "
            "(%s, %s, 'copy', '', '{}', now(), now(), now(), 0, 0, 0)",
            [session_id, agent_id],
        )
        cursor.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM sessions_app_message) + 1000000, "
            "(SELECT coalesce(max(id), 0) FROM sessions_app_toolcall) + 1000000"
        )
        message_id, call_id = cursor.fetchone()
        messages, calls = [], []
        for fields, message_calls in _batch_rows(session_id, agent_id, rows):
            messages.append((message_id, *(fields[c] for c in MESSAGE_COPY_COLUMNS)))
            for call in message_calls:
                row = {**call, "input": json.dumps(call["input"]), "output": _text(call["output"])}
                calls.append((call_id, message_id, *(row[c] for c in CALL_COPY_COLUMNS)))
                call_id += 1
            message_id += 1
        started = time.perf_counter()
        columns = ", ".join(MESSAGE_COPY_COLUMNS)
        with cursor.copy(f"COPY sessions_app_message (id, {columns}) FROM STDIN") as copy:
            for message in messages:
                copy.write_row(message)
        cursor.execute(CHECK_DEFERRED)
        messages_only = time.perf_counter() - started
        columns = ", ".join(CALL_COPY_COLUMNS)
        sql = f"COPY sessions_app_toolcall (id, message_id, {columns}) FROM STDIN"
        with cursor.copy(sql) as copy:
            for call in calls:
                copy.write_row(call)
        cursor.execute(CHECK_DEFERRED)
        seconds = time.perf_counter() - started
        conn.rollback()
    return Figure(
        median_ms=round(seconds * 1000, 3),
        queries=2,
        extra={
            "rate": round(rows / seconds),
            "unit": "msgs/s",
            "rows": rows,
            "tool_calls": len(calls),
            "messages_only_rate": round(rows / messages_only),
        },
    )


def bulk_create_rate(rows: int = 5_000) -> Figure:
    """Messages per second through Django's bulk_create of the API batches' messages and tool
    calls, foreign keys checked, rolled back afterwards."""
    agent = Agent.objects.order_by("pk").first()
    seconds = 0.0
    try:
        with transaction.atomic():
            session = session_start(agent=agent, name="bulk_create (benchmark, rolled back)")
            messages, calls = [], []
            for fields, message_calls in _batch_rows(session.pk, agent.pk, rows):
                message = Message(**fields)
                messages.append(message)
                # The call's message_id is read from the message once bulk_create has saved it.
                calls += [ToolCall(message=message, **call) for call in message_calls]
            started = time.perf_counter()
            Message.objects.bulk_create(messages, batch_size=1000)
            ToolCall.objects.bulk_create(calls, batch_size=1000)
            with transaction.get_connection().cursor() as cursor:
                cursor.execute(CHECK_DEFERRED)
            seconds = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        pass
    return Figure(
        median_ms=round(seconds * 1000, 3),
        extra={"rate": round(rows / seconds), "unit": "msgs/s", "rows": rows},
    )


class _Rollback(Exception):
    pass


def seed_demo_rate(scratch: Scratch) -> Figure:
    """Messages per second through `manage.py seed_demo` into a fresh database."""
    url = scratch.fresh("seed")
    try:
        run = manage_measured(["seed_demo"], database_url=url)
    except RuntimeError as exc:
        scratch.drop("seed")
        note = "n/a (no seed_demo)" if "Unknown command" in str(exc) else f"error: {exc}"
        return Figure(note=note[:120])
    with psycopg.connect(url) as conn:
        messages = conn.execute("SELECT count(*) FROM sessions_app_message").fetchone()[0]
    scratch.drop("seed")
    if not messages:
        return Figure(note="n/a (seed_demo wrote no messages)")
    return Figure(
        median_ms=round(run.seconds * 1000, 3),
        extra={
            "rate": round(messages / run.seconds),
            "unit": "msgs/s",
            "rows": messages,
            "note": "whole command, process start included",
        },
    )


# --- backup and restore ------------------------------------------------------------------------
def line_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


# dumpdata's lines start the same way; reading these few bytes beats parsing a million lines.
_MODEL = re.compile(rb'^\{"model": "([\w.]+)","pk": ("[0-9a-f-]{36}")?')
_FIRST_FIELD_SESSION = re.compile(rb'"fields": \{"session": ("[0-9a-f-]{36}")')
_UNDER_SESSION = {
    b"sessions_app.message",
    b"sessions_app.toolcall",
    b"sessions_app.checkpoint",
    b"sessions_app.checkpointwrite",
}


def _model_of(line: bytes) -> tuple[bytes, bytes | None]:
    found = _MODEL.match(line)
    if found:
        return found.group(1), found.group(2)
    record = json.loads(line)
    pk = record.get("pk")
    return record["model"].encode(), json.dumps(pk).encode() if isinstance(pk, str) else None


def _session_of(line: bytes) -> bytes | None:
    found = _FIRST_FIELD_SESSION.search(line)
    if found:
        return found.group(1)
    session = json.loads(line)["fields"].get("session")
    return None if session is None else json.dumps(session).encode()


def sample_backup(source: Path, target: Path, max_rows: int) -> int:
    """A consistent part of a backup: everything but the session tree, plus the first sessions
    and all rows under them, up to about `max_rows` rows. Streams; keeps only session ids."""
    counts: dict[bytes, int] = {}
    with source.open("rb") as handle:
        for line in handle:
            model, _pk = _model_of(line)
            counts[model] = counts.get(model, 0) + 1
    total = sum(counts.values())
    tree = sum(counts.get(m, 0) for m in (b"sessions_app.session", *_UNDER_SESSION))
    share = max(0.0, min(1.0, (max_rows - (total - tree)) / max(1, tree)))
    keep_sessions = max(1, int(counts.get(b"sessions_app.session", 0) * share))
    kept: set[bytes] = set()
    written = 0
    with source.open("rb") as handle, target.open("wb") as out:
        for line in handle:
            model, pk = _model_of(line)
            if model == b"sessions_app.session":
                # Typical sessions only: one 5,000-message session would be the whole sample.
                if len(kept) >= keep_sessions or json.loads(line)["fields"]["message_count"] > 500:
                    continue
                kept.add(pk or b"")
            elif model in _UNDER_SESSION:
                if _session_of(line) not in kept:
                    continue
            elif model == b"memories.memory":
                fields = json.loads(line)["fields"]
                sessions = (fields.get("session"), fields.get("source_session"))
                if any(s is not None and json.dumps(s).encode() not in kept for s in sessions):
                    continue
            out.write(line)
            written += 1
    return written


def _digest(path: Path) -> str:
    """A digest of the backup's content, equal for files that restore to the same rows."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for line in handle:
            digest.update(line)
    return digest.hexdigest()


def _figure(run: Run, rows: int, **extra: Any) -> Figure:
    return Figure(
        median_ms=round(run.seconds * 1000, 1),
        extra={
            "rate": round(rows / run.seconds),
            "unit": "rows/s",
            "rows": rows,
            "peak_mb": round(run.peak_mb, 1),
            **extra,
        },
    )


def backup_and_restore(
    *, database_url: str, scratch: Scratch, workdir: Path, loaddata_max_rows: int, log: Callable
) -> dict[str, Figure]:
    """The README's backup command, `restore` and stock `loaddata` of it, and stock `dumpdata`.

    Exactness is checked by dumping each restored database again: the file must come back
    byte for byte. Stock loaddata and dumpdata take a consistent sample when the backup is
    larger than `loaddata_max_rows` (at about 600 rows/s a million rows take half an hour).
    """
    figures: dict[str, Figure] = {}
    backup = workdir / "backup.jsonl"
    again = workdir / "again.jsonl"
    # Each command's time includes starting Python and Django; at small scales that dominates.
    startup = manage(["version"], database_url=database_url).seconds
    log("  backup: dumpdata (the README's command) ...")
    run = manage_measured([*BACKUP_COMMAND, str(backup)], database_url=database_url)
    rows = line_count(backup)
    figures["backup"] = _figure(run, rows, bytes=backup.stat().st_size)

    log(f"  restore: {rows:,} rows ...")
    url = scratch.fresh("restore")
    run = manage_measured(["restore", str(backup), "--no-progress"], database_url=url)
    manage([*BACKUP_COMMAND, str(again)], database_url=url)
    figures["restore"] = _figure(run, rows, exact=_digest(again) == _digest(backup))

    sample, sample_rows = backup, rows
    if rows > loaddata_max_rows:
        sample = workdir / "sample.jsonl"
        sample_rows = sample_backup(backup, sample, loaddata_max_rows)
        url = scratch.fresh("restore")
        run = manage_measured(["restore", str(sample), "--no-progress"], database_url=url)
        figures["restore_sample"] = _figure(run, sample_rows)
    log(f"  stock loaddata: {sample_rows:,} rows ...")
    url = scratch.fresh("restore")
    run = manage_measured(["loaddata", str(sample)], database_url=url)
    log(f"  stock dumpdata: {sample_rows:,} rows ...")
    stock_dump = manage_measured(
        [*BACKUP_COMMAND, str(again), "--settings", "bench.stock_settings"], database_url=url
    )
    same = _digest(again) == _digest(sample)
    figures["loaddata"] = _figure(run, sample_rows, sampled=sample is not backup, exact=same)
    figures["stock_dumpdata"] = _figure(stock_dump, sample_rows, sampled=sample is not backup)
    scratch.drop("restore")
    for figure in figures.values():
        seconds = figure.median_ms / 1000
        figure.extra["startup_s"] = round(startup, 2)
        figure.extra["rate_without_startup"] = round(
            figure.extra["rows"] / max(seconds - startup, 1e-3)
        )
    return figures


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
