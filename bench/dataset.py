"""The benchmark's dataset, built with COPY and kept between runs.

Rows are generated the way the services would write them (gapless `seq`, fingerprints from
`error_fingerprint`), streamed into COPY-format temporary files, then loaded
table by table in one transaction with the secondary indexes dropped and rebuilt afterwards;
the session counters and the rollups are then counted from the rows by `sessions_app.rollups`.
A row in `bench.dataset` says what is loaded, so a second run at the same scale reuses it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg.sql import SQL, Identifier

from sessions_app import rollups
from sessions_app.fingerprints import error_fingerprint
from sessions_app.services import MESSAGE_FIELDS, TOOL_CALL_FIELDS

DATASET_VERSION = 6
SEED = 20261122
BIG_SESSION_MESSAGES = 5000
AGENTS = 20
# Traffic is skewed, as in real fleets: agent k takes a share proportional to 1/k (agent 1 about
# 28%). It also keeps the "one agent" pages full at 10k, so growth compares like with like.
AGENT_WEIGHTS = [1 / rank for rank in range(1, AGENTS + 1)]
SEARCH_WORD = "refund"  # in about 0.5% of messages: the text-search measurements look for it
COMMON_WORD = "customer"  # one of the vocabulary's words, each in about 14% of messages
LOGDECK_TABLES = [
    "agents_user",
    "agents_agent",
    "sessions_app_session",
    "sessions_app_message",
    "sessions_app_toolcall",
    "sessions_app_checkpoint",
    "memories_memory",
]
VOCABULARY = [
    "order",
    "shipped",
    "delivery",
    "address",
    "customer",
    "account",
    "password",
    "reset",
    "invoice",
    "payment",
    "card",
    "declined",
    "subscription",
    "plan",
    "upgrade",
    "downgrade",
    "cancel",
    "support",
    "ticket",
    "status",
    "tracking",
    "number",
    "warehouse",
    "return",
    "label",
    "exchange",
    "size",
    "colour",
    "price",
    "discount",
    "coupon",
    "code",
    "expired",
    "email",
    "phone",
    "verify",
    "identity",
    "login",
    "error",
    "timeout",
    "retry",
    "database",
    "query",
    "report",
    "export",
    "download",
    "upload",
    "file",
    "attachment",
    "schedule",
    "meeting",
    "calendar",
    "reminder",
    "weather",
    "forecast",
    "flight",
    "hotel",
    "booking",
    "reservation",
    "table",
    "restaurant",
    "menu",
    "allergy",
    "vegetarian",
    "recipe",
    "ingredient",
    "search",
    "result",
    "summary",
    "translate",
    "language",
    "french",
    "german",
    "spanish",
    "please",
    "thanks",
    "hello",
    "could",
    "would",
    "should",
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "for",
    "on",
    "with",
    "at",
    "by",
    "from",
    "about",
    "this",
    "that",
    "it",
    "is",
    "are",
    "was",
    "were",
    "be",
]
TOOLS = [
    "lookup_order",
    "search_kb",
    "send_email",
    "create_ticket",
    "run_sql",
    "get_weather",
    "book_table",
    "translate",
    "fetch_url",
    "charge_card",
    "update_address",
    "calendar_create",
]
ERRORS = [
    "Order {n} not found",
    "Timeout after {ms} ms calling https://api.example.com/v1/orders/{n}",
    "Permission denied: '/var/data/customer_{n}/profile.json'",
    "KeyError: 'field_{k}' in payload {uid}",
    "Rate limit exceeded for key {hex}, retry in {s} s",
    "Card {n} declined: insufficient funds",
    "connection to db-{k}.internal:5432 refused",
    "HTTP 502 from upstream at 2026-01-{d:02d}T10:{m:02d}:00Z",
    "Invalid date \"2026-13-{d:02d}\" for field 'start'",
    "User {email} has no mailbox",
]
PLATFORMS = ["web", "slack", "api", "whatsapp", "voice"]


def scale_messages(scale: str) -> int:
    """'10k' -> 10000, '1m' -> 1000000; plain numbers pass."""
    text = scale.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "km" else text
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise SystemExit(
            f"--scale {scale!r}: use 10k, 100k, 1m, 10m or a number of messages."
        ) from None
    if value < 200:
        raise SystemExit("--scale must be at least 200 messages.")
    return value


@dataclass(frozen=True)
class Dataset:
    messages: int
    sessions: int
    tool_calls: int
    errors: int
    big_session: str
    built_seconds: float | None  # None when reused
    copy_rows_per_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        value = json.dumps(value)
    return (
        str(value)
        .replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


class CopyFile:
    """A temporary file in COPY text format for one table."""

    def __init__(self, directory: Path, table: str, columns: list[str]) -> None:
        self.table = table
        self.columns = columns
        self.path = directory / f"{table}.copy"
        self.handle: IO[str] = self.path.open("w", encoding="utf-8")
        self.rows = 0

    def add(self, *values: Any) -> None:
        self.handle.write("\t".join(_copy_text(v) for v in values) + "\n")
        self.rows += 1

    def load(self, cursor: psycopg.Cursor) -> None:
        self.handle.close()
        sql = f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN"
        with cursor.copy(sql) as copy, self.path.open("rb") as source:
            while block := source.read(1 << 20):
                copy.write(block)


def _ensure_meta(cursor: psycopg.Cursor) -> None:
    cursor.execute("CREATE SCHEMA IF NOT EXISTS bench")
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS bench.dataset (id int PRIMARY KEY, version int, "
        "messages bigint, details jsonb, built_at timestamptz)"
    )
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS bench.dropped_index (name text PRIMARY KEY, def text)"
    )
    # A build that died before rebuilding its indexes left their definitions here.
    cursor.execute("SELECT name, def FROM bench.dropped_index")
    for _name, definition in cursor.fetchall():
        cursor.execute(definition.replace(" INDEX ", " INDEX IF NOT EXISTS ", 1))
    cursor.execute("DELETE FROM bench.dropped_index")


def existing(conn: psycopg.Connection, messages: int) -> Dataset | None:
    """The loaded dataset if it is this scale and still looks intact, else None."""
    with conn.cursor() as cursor:
        _ensure_meta(cursor)
        cursor.execute("SELECT version, messages, details FROM bench.dataset WHERE id = 1")
        row = cursor.fetchone()
        if row is None or row[0] != DATASET_VERSION or row[1] != messages:
            return None
        details = as_json(row[2])
        # Cheap integrity check: the counters of all sessions add up to the dataset's size.
        cursor.execute(
            "SELECT coalesce(sum(message_count), 0) FROM sessions_app_session WHERE name LIKE %s",
            ["bench %"],
        )
        if cursor.fetchone()[0] != messages:
            return None
    return Dataset(
        messages=messages,
        sessions=details["sessions"],
        tool_calls=details["tool_calls"],
        errors=details["errors"],
        big_session=details["big_session"],
        built_seconds=None,
        copy_rows_per_s=None,
    )


def vacuum(conn: psycopg.Connection) -> int:
    """VACUUM (ANALYZE) the tables that hold dead rows, as autovacuum would; the dead rows found.

    Every run leaves some: the ingestion figures roll back their COPY and bulk_create and delete
    the batches they append. Where autovacuum is off (as on this kind of machine) they pile up at
    the newest end of the indexes, and the planner walks them each time it probes a column's
    actual range, which makes a join of messages and tool calls slow to plan."""
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_dead_tup FROM pg_stat_user_tables "
            "WHERE schemaname = 'public' AND n_dead_tup > 0 ORDER BY relname"
        )
        dead = cursor.fetchall()
        for table, _ in dead:
            cursor.execute(SQL("VACUUM (ANALYZE) {}").format(Identifier(table)))
    return sum(count for _, count in dead)


def as_json(value: Any) -> Any:
    # On Django's own connection jsonb arrives as text (Django decodes JSONField itself).
    return json.loads(value) if isinstance(value, str) else value


def _secondary_indexes(cursor: psycopg.Cursor) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname = ANY(%s) AND NOT i.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [LOGDECK_TABLES],
    )
    return cursor.fetchall()


def _session_sizes(rng: random.Random, total: int, count: int) -> list[int]:
    """`count` session sizes of about 50 (10 to 90) that add up to `total` exactly."""
    sizes = [rng.randint(10, 90) for _ in range(count)]
    diff = total - sum(sizes)
    step = 1 if diff > 0 else -1
    while diff:
        for i in range(count):
            if diff and (step > 0 or sizes[i] > 1):
                sizes[i] += step
                diff -= step
    return sizes


def build(conn: psycopg.Connection, messages: int, *, log: Any = print) -> Dataset:
    """Empty the Logdeck tables and load a dataset of `messages` messages."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    big = min(BIG_SESSION_MESSAGES, messages // 2)
    rest = messages - big
    count = max(1, rest // 50)
    sizes = [big, *_session_sizes(rng, rest, count)]
    n_users = max(10, messages // 100)

    with tempfile.TemporaryDirectory(prefix="logdeck-bench-") as tmp:
        directory = Path(tmp)
        users = CopyFile(
            directory,
            "agents_user",
            [
                "id",
                "password",
                "last_login",
                "is_superuser",
                "email",
                "name",
                "phone_number",
                "user_data",
                "is_staff",
                "is_active",
                "created_at",
                "updated_at",
            ],
        )
        agents = CopyFile(
            directory,
            "agents_agent",
            [
                "id",
                "name",
                "type",
                "model",
                "description",
                "config",
                "system_prompt",
                "version",
                "active",
                "run_id",
                "created_at",
                "updated_at",
            ],
        )
        sessions = CopyFile(
            directory,
            "sessions_app_session",
            [
                "id",
                "agent_id",
                "user_id",
                "name",
                "platform",
                "metadata",
                "created_at",
                "updated_at",
                "last_activity_at",
                "finished_at",
                "message_count",
                "tool_call_count",
                "error_count",
            ],
        )
        message_file = CopyFile(directory, "sessions_app_message", list(MESSAGE_FIELDS))
        calls = CopyFile(directory, "sessions_app_toolcall", list(TOOL_CALL_FIELDS))
        checkpoints = CopyFile(
            directory,
            "sessions_app_checkpoint",
            ["id", "session_id", "type", "data", "created_at"],
        )
        memories = CopyFile(
            directory,
            "memories_memory",
            [
                "id",
                "name",
                "description",
                "content",
                "agent_id",
                "user_id",
                "source_session_id",
                "read_mode",
                "access",
                "metadata",
                "created_at",
                "updated_at",
            ],
        )

        start = now - dt.timedelta(days=30)
        for i in range(1, n_users + 1):
            created = start - dt.timedelta(days=rng.randint(1, 300))
            users.add(
                i, "!unusable", None, False, f"user{i}@example.com", f"User {i}",
                f"+1555{i:07d}", {"plan": rng.choice(["free", "pro"])}, False, True, created,
                created,
            )  # fmt: skip
        for i in range(1, AGENTS + 1):
            agents.add(
                i, f"agent-{i:02d}", "assistant", rng.choice(["gpt-5", "claude", "llama"]),
                f"Bench agent {i}", {"temperature": 0.2, "tools": TOOLS[: 3 + i % 5]},
                "You are a helpful agent.", "1.0", True, "", start, start,
            )  # fmt: skip

        message_id = 0
        call_id = 0
        errors = 0
        checkpoint_id = 0
        big_session = ""
        for index, size in enumerate(sizes):
            sid = uuid.UUID(int=rng.getrandbits(128), version=4)
            agent = rng.choices(range(1, AGENTS + 1), weights=AGENT_WEIGHTS)[0]
            user = rng.randint(1, n_users) if rng.random() < 0.9 else None
            if index == 0:
                big_session = str(sid)
                created = now - dt.timedelta(days=3)
                gap = (10, 30)
            else:
                created = start + dt.timedelta(seconds=rng.randint(0, 30 * 86400 - 7200))
                gap = (5, 60)
            at = created
            pending_result = False
            for seq in range(size):
                message_id += 1
                at = at + dt.timedelta(seconds=rng.randint(*gap), milliseconds=rng.randint(0, 999))
                words = rng.choices(VOCABULARY, k=rng.randint(6, 24))
                if rng.random() < 0.005:
                    words.insert(rng.randrange(len(words)), SEARCH_WORD)
                text = " ".join(words)
                if seq % 2 == 0:
                    role, kind = ("tool", "tool_result") if pending_result else ("user", "text")
                    message_file.add(
                        message_id, sid, agent, seq, role, kind, text, "", "", None, None, None, at
                    )
                    pending_result = False
                    continue
                uses_tool = rng.random() < 0.3
                tokens_in, tokens_out = rng.randint(50, 4000), rng.randint(5, 800)
                raw = {"id": f"resp_{message_id}", "usage": {"in": tokens_in, "out": tokens_out}}
                message_file.add(
                    message_id, sid, agent, seq, "assistant",
                    "tool_use" if uses_tool else "text", text, "", "gpt-5", tokens_in, tokens_out,
                    raw, at,
                )  # fmt: skip
                if not uses_tool:
                    continue
                pending_result = True
                call_id += 1
                tool = rng.choice(TOOLS)
                failing = rng.random() < 0.05
                finished = at + dt.timedelta(milliseconds=rng.randint(20, 5000))
                approval = (
                    {"by": "operator@example.com", "decision": "approve"}
                    if rng.random() < 0.1
                    else None
                )
                if failing:
                    errors += 1
                    message = rng.choice(ERRORS).format(
                        n=rng.randint(1000, 99999), ms=rng.randint(1000, 30000),
                        k=rng.randint(1, 9), uid=uuid.UUID(int=rng.getrandbits(128), version=4),
                        hex=f"{rng.getrandbits(64):016x}", s=rng.randint(1, 60),
                        d=rng.randint(1, 28), m=rng.randint(0, 59),
                        email=f"user{rng.randint(1, 999)}@example.com",
                    )  # fmt: skip
                    calls.add(
                        call_id, sid, agent, message_id, f"call_{call_id}", tool,
                        {"q": text[:40], "id": call_id}, None, "failed", True, message,
                        error_fingerprint(message), approval, rng.randint(20, 5000), at, finished,
                    )  # fmt: skip
                else:
                    calls.add(
                        call_id, sid, agent, message_id, f"call_{call_id}", tool,
                        {"q": text[:40], "id": call_id}, {"status": "ok", "rows": call_id % 17},
                        "completed", False, "", "", approval, rng.randint(20, 5000), at, finished,
                    )  # fmt: skip
            finished_at = None if index == 0 or rng.random() < 0.1 else at + dt.timedelta(minutes=1)
            platform = rng.choice(PLATFORMS)
            sessions.add(
                sid, agent, user, f"bench {index}", platform,
                {"channel": platform, "tier": rng.choice(["free", "pro", "enterprise"])},
                created, finished_at or at, at, finished_at, 0, 0, 0,
            )  # fmt: skip
            if index % 5 == 0:
                checkpoint_id += 1
                checkpoints.add(checkpoint_id, sid, "state", {"step": size, "done": False}, at)
            if index % 2 == 0:
                memories.add(
                    uuid.UUID(int=rng.getrandbits(128), version=4), f"memory-{index}",
                    "What the customer prefers", " ".join(rng.choices(VOCABULARY, k=12)), agent,
                    user, sid, rng.choice(["system_prompt", "tool"]), "read_write", {}, at, at,
                )  # fmt: skip
        generated = time.perf_counter()
        log(f"  generated {messages:,} messages in {generated - started:.1f} s; loading with COPY")

        files = [users, agents, sessions, message_file, calls, checkpoints, memories]
        with conn.transaction(), conn.cursor() as cursor:
            _ensure_meta(cursor)
            cursor.execute("DELETE FROM bench.dataset")
            cursor.execute(
                "TRUNCATE agents_user, agents_agent, sessions_app_session, sessions_app_message, "
                "sessions_app_toolcall, sessions_app_checkpoint, sessions_app_dailyactivity, "
                "sessions_app_errorgroupday, sessions_app_toolstatecount, "
                "memories_memory, agents_apikey, "
                "django_admin_log, django_session RESTART IDENTITY CASCADE"
            )
            indexes = _secondary_indexes(cursor)
            for name, definition in indexes:
                cursor.execute(
                    "INSERT INTO bench.dropped_index VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    [name, definition],
                )
                cursor.execute(f"DROP INDEX {name}")
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            # The rows are consistent by construction: skip the per-row foreign-key triggers when
            # allowed (superuser), else check them all once, before the indexes come back.
            replica = True
            try:
                with conn.transaction():
                    cursor.execute("SET LOCAL session_replication_role = replica")
            except psycopg.errors.InsufficientPrivilege:
                replica = False
            loaded_from = time.perf_counter()
            for copy_file in files:
                copy_file.load(cursor)
            if not replica:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            loaded = time.perf_counter()
            for _name, definition in indexes:
                cursor.execute(definition)
            cursor.execute("DELETE FROM bench.dropped_index")
            # Every derived number (the session counters, loaded as zeros, and the rollups) from
            # the rows, by the module that keeps them.
            statements, params = rollups.bulk_sql()
            for statement in statements:
                cursor.execute(statement, params if "%(" in statement else None)
            for table in LOGDECK_TABLES:
                if table not in ("sessions_app_session", "memories_memory"):
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table}), 1))"
                    )
            details = {
                "sessions": len(sizes),
                "tool_calls": call_id,
                "errors": errors,
                "big_session": big_session,
                "users": n_users,
            }
            cursor.execute(
                "INSERT INTO bench.dataset VALUES (1, %s, %s, %s, now())",
                [DATASET_VERSION, messages, json.dumps(details)],
            )
        indexed = time.perf_counter()
        with conn.cursor() as cursor:
            cursor.execute("ANALYZE")
        rows = sum(f.rows for f in files)
        copy_rate = rows / (loaded - loaded_from)
        log(
            f"  COPY {rows:,} rows in {loaded - loaded_from:.1f} s ({copy_rate:,.0f} rows/s), "
            f"indexes {indexed - loaded:.1f} s, analyze {time.perf_counter() - indexed:.1f} s"
        )
    return Dataset(
        messages=messages,
        sessions=len(sizes),
        tool_calls=call_id,
        errors=errors,
        big_session=big_session,
        built_seconds=time.perf_counter() - started,
        copy_rows_per_s=copy_rate,
    )
