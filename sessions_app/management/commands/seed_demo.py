"""`manage.py seed_demo`: realistic demo data for the console, the API and the benchmark.

Rows are built in memory and written with `bulk_create` in chunks of sessions, one transaction
per chunk, so 100,000 messages take seconds; the session counters are computed from the very rows
written, so they are exact.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from agents.models import Agent, User
from agents.services import agent_upsert
from memories.models import Access, Memory, ReadMode
from sessions_app import rollups
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import (
    Checkpoint,
    ContentType,
    Message,
    Role,
    Session,
    ToolCall,
    ToolCallState,
)

DAYS = 30  # the overview charts show 30 days
FAILURE_RATE = 0.05
CHUNK_SESSIONS = 250
BATCH_ROWS = 2000

FIRST_NAMES = [
    "Ada",
    "Amir",
    "Ana",
    "Ben",
    "Chen",
    "Chloe",
    "Dara",
    "Diego",
    "Elif",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Ines",
    "Ivan",
    "Jonas",
    "Kai",
    "Lea",
    "Leo",
    "Lina",
    "Luca",
    "Maya",
    "Mei",
    "Nia",
    "Noah",
    "Omar",
    "Priya",
    "Rosa",
    "Sam",
    "Sara",
    "Tariq",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Adams",
    "Baker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zhang",
]
PLATFORMS = ("web", "web", "web", "slack", "api", "api", "whatsapp", "cli", "voice")
LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP", "pt-BR")
USER_PLANS = ("free", "free", "pro", "team", "enterprise")


@dataclass(frozen=True)
class Tool:
    name: str
    make_input: Callable[[random.Random], dict[str, Any]]
    make_output: Callable[[random.Random], Any]
    # Error messages with ids and numbers inside: the error groups must fold them into one.
    errors: tuple[Callable[[random.Random], str], ...]
    needs_approval: bool = False


def _order(rng: random.Random) -> int:
    return rng.randint(10_000, 99_999)


def _hex(rng: random.Random, n: int = 12) -> str:
    return f"{rng.getrandbits(n * 4):0{n}x}"


COMMON_ERRORS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: (
        f"Rate limit exceeded (429): retry after {r.randint(2, 60)}s, request id req_{_hex(r)}"
    ),
    lambda r: (
        f"Connection refused: db-replica-{r.randint(1, 4)}.internal:5432 "
        f"(attempt {r.randint(1, 3)} of 3)"
    ),
)

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "lookup_order",
            lambda r: {"order_id": _order(r), "include": ["items", "shipping"]},
            lambda r: {
                "status": r.choice(["shipped", "processing", "delivered"]),
                "items": [
                    {"sku": f"SKU-{r.randint(100, 999)}", "qty": r.randint(1, 3)}
                    for _ in range(r.randint(1, 3))
                ],
                "eta": None if r.random() < 0.3 else f"2026-12-{r.randint(1, 28):02d}",
            },
            (
                lambda r: f"Order {_order(r)} not found",
                lambda r: (
                    f"Timeout after {r.choice([3000, 5000, 10000])}ms calling "
                    f"https://orders.internal/v2/orders/{_order(r)}"
                ),
            ),
        ),
        Tool(
            "issue_refund",
            lambda r: {"order_id": _order(r), "amount": round(r.uniform(5, 300), 2), "cur": "EUR"},
            lambda r: {"refund_id": f"re_{_hex(r, 10)}", "state": "accepted"},
            (lambda r: f"Refund of {r.randint(301, 2000)}.00 EUR exceeds the 300.00 EUR limit",),
            needs_approval=True,
        ),
        Tool(
            "search_kb",
            lambda r: {"query": r.choice(["return policy", "warranty", "shipping times"])},
            lambda r: {"hits": [{"id": f"kb-{r.randint(1, 400)}", "score": 0.9}]},
            (),
        ),
        Tool(
            "send_email",
            lambda r: {"to": "customer@example.com", "template": r.choice(["update", "welcome"])},
            lambda r: {"message_id": f"<{_hex(r, 16)}@mail.logdeck.test>"},
            (lambda r: f"SMTP 550: mailbox unavailable for user{r.randint(1, 999)}@example.com",),
            needs_approval=True,
        ),
        Tool(
            "read_file",
            lambda r: {
                "path": f"src/{r.choice(['app', 'lib', 'api'])}/{r.choice(['main', 'db'])}.py"
            },
            lambda r: {"lines": r.randint(20, 900), "truncated": r.random() < 0.2},
            (
                lambda r: (
                    f"FileNotFoundError: /workspace/src/module_{r.randint(1, 90)}/"
                    f"handler.py does not exist"
                ),
            ),
        ),
        Tool(
            "write_file",
            lambda r: {
                "path": f"src/app/feature_{r.randint(1, 40)}.py",
                "bytes": r.randint(1, 9000),
            },
            lambda r: {"written": True},
            (),
        ),
        Tool(
            "run_tests",
            lambda r: {"target": "tests/", "args": ["-x", "-q"]},
            lambda r: {"passed": r.randint(40, 400), "failed": 0, "seconds": r.uniform(2, 90)},
            (
                lambda r: (
                    f"{r.randint(1, 12)} tests failed, first: test_checkout_{r.randint(1, 50)} "
                    f"AssertionError: expected {r.randint(1, 9)} got {r.randint(10, 20)}"
                ),
            ),
        ),
        Tool(
            "shell",
            lambda r: {"cmd": r.choice(["git status", "make lint", "ls -la"])},
            lambda r: {"exit_code": 0, "stdout": "ok"},
            (
                lambda r: (
                    f"Command exited with status {r.randint(1, 127)} after {r.randint(1, 40)}s"
                ),
            ),
            needs_approval=True,
        ),
        Tool(
            "web_search",
            lambda r: {"q": r.choice(["battery recycling EU", "LLM evaluation", "heat pumps"])},
            lambda r: {"results": [f"https://example.org/a/{r.randint(1, 999)}" for _ in range(3)]},
            (),
        ),
        Tool(
            "fetch_url",
            lambda r: {"url": f"https://example.org/articles/{r.randint(1, 5000)}"},
            lambda r: {"status": 200, "chars": r.randint(900, 40000)},
            (
                lambda r: (
                    f"HTTP {r.choice([403, 404])} fetching "
                    f"https://example.org/articles/{r.randint(1, 5000)}"
                ),
            ),
        ),
        Tool(
            "summarize",
            lambda r: {"max_words": r.choice([100, 200, 400])},
            lambda r: {
                "summary": "Three findings, two open questions.",
                "words": r.randint(80, 400),
            },
            (),
        ),
        Tool(
            "search_flights",
            lambda r: {"from": r.choice(["BER", "LIS", "NRT"]), "to": r.choice(["JFK", "SFO"])},
            lambda r: {"offers": [{"price": r.randint(300, 1500), "stops": r.randint(0, 2)}]},
            (lambda r: f"Upstream GDS error code {r.randint(1000, 9999)}: no availability",),
        ),
        Tool(
            "book_hotel",
            lambda r: {"hotel_id": f"H{r.randint(1000, 9999)}", "nights": r.randint(1, 7)},
            lambda r: {"confirmation": f"CNF-{_hex(r, 8).upper()}"},
            (),
            needs_approval=True,
        ),
        Tool(
            "get_weather",
            lambda r: {"city": r.choice(["Berlin", "Lisbon", "Tokyo", "New York"])},
            lambda r: {"temp_c": r.randint(-5, 35), "sky": r.choice(["clear", "rain", "cloudy"])},
            (),
        ),
        Tool(
            "crm_lookup",
            lambda r: {"account": f"acct_{r.randint(1, 5000)}"},
            lambda r: {
                "tier": r.choice(["smb", "mid", "enterprise"]),
                "arr": r.randint(1, 900) * 1000,
            },
            (lambda r: f"CRM record acct_{r.randint(1, 5000)} is locked by another process",),
        ),
        Tool(
            "create_lead",
            lambda r: {
                "company": r.choice(["Acme", "Globex", "Initech"]),
                "score": r.randint(1, 99),
            },
            lambda r: {"lead_id": r.randint(100_000, 999_999)},
            (),
        ),
        Tool(
            "query_metrics",
            lambda r: {"metric": "p95_latency_ms", "window": "15m"},
            lambda r: {"value": r.uniform(80, 900), "unit": "ms"},
            (),
        ),
        Tool(
            "page_oncall",
            lambda r: {"severity": r.choice(["sev2", "sev3"])},
            lambda r: {"incident": f"INC-{r.randint(1000, 9999)}"},
            (),
            needs_approval=True,
        ),
    )
}


@dataclass(frozen=True)
class DemoAgent:
    name: str
    type: str
    model: str
    description: str
    system_prompt: str
    tools: tuple[str, ...]
    questions: tuple[str, ...]
    weight: int
    active: bool = True


AGENTS = (
    DemoAgent(
        "support-bot",
        "customer_support",
        "claude-sonnet-4-5",
        "Answers order and refund questions for the web shop.",
        "You are Logdeck Shop's support agent. Be brief, check the order before answering.",
        ("lookup_order", "issue_refund", "search_kb", "send_email"),
        (
            "Where is my order #{n}?",
            "I want a refund for order {n}, the item arrived broken.",
            "Can I change the shipping address of order {n}?",
            "What is your return policy for sale items?",
        ),
        weight=5,
    ),
    DemoAgent(
        "code-assistant",
        "coding",
        "gpt-5",
        "Pairs with developers on the monorepo: reads code, edits, runs the tests.",
        "You are a careful senior engineer. Run the tests before you say something works.",
        ("read_file", "write_file", "run_tests", "shell"),
        (
            "The checkout test {n} is flaky, can you look?",
            "Add a retry to the payment client (ticket LD-{n}).",
            "Why does `make lint` fail on main?",
        ),
        weight=4,
    ),
    DemoAgent(
        "research-agent",
        "research",
        "gemini-2.5-pro",
        "Searches the web and writes sourced summaries.",
        "You research questions and cite every source you use.",
        ("web_search", "fetch_url", "summarize"),
        (
            "Summarise the latest work on battery recycling in the EU.",
            "Compare three papers on LLM evaluation published since {n}.",
            "What do heat pump installers charge in 2026?",
        ),
        weight=3,
    ),
    DemoAgent(
        "travel-planner",
        "planner",
        "gpt-5-mini",
        "Plans trips: flights, hotels, weather.",
        "You plan trips within the traveller's budget and ask before booking anything.",
        ("search_flights", "book_hotel", "get_weather"),
        (
            "Find me a flight to New York under {n} EUR next month.",
            "Book a hotel near Shibuya for 3 nights.",
            "Will it rain in Lisbon this weekend?",
        ),
        weight=2,
    ),
    DemoAgent(
        "sales-assistant",
        "sales",
        "llama-3.3-70b",
        "Qualifies inbound leads and drafts follow-ups.",
        "You qualify leads politely; never promise discounts.",
        ("crm_lookup", "create_lead", "send_email"),
        (
            "New inbound lead from Globex, {n} seats, please qualify.",
            "Draft a follow-up to account acct_{n}.",
        ),
        weight=2,
    ),
    DemoAgent(
        "ops-watcher",
        "monitoring",
        "claude-haiku-4-5",
        "Watched latency and paged on-call. Retired in favour of the new alerting.",
        "You watch service health and page on-call only for real incidents.",
        ("query_metrics", "page_oncall"),
        ("p95 latency of the API is above {n}ms, investigate.",),
        weight=1,
        active=False,
    ),
)

FOLLOW_UPS = (
    "Thanks. And what about the other one?",
    "Can you double-check that?",
    "OK, please go ahead.",
    "That is not what I meant; try again.",
    "Great, one more thing.",
)

ANSWERS = (
    "Done. Here is what I found, with the details above.",
    "I checked it for you: everything is in order now.",
    "That did not work as planned; I have noted the error and suggested a next step.",
    "Here is a short summary and the sources I used.",
    "I need one more detail from you before I can continue.",
)


@dataclass
class Totals:
    agents: int = 0
    users: int = 0
    sessions: int = 0
    active: int = 0
    messages: int = 0
    tool_calls: int = 0
    errors: int = 0
    checkpoints: int = 0
    memories: int = 0


@dataclass
class SessionRows:
    session: Session
    messages: list[Message] = field(default_factory=list)
    # (index of the message in `messages`, the call) — the message pk is known after insert.
    tool_calls: list[tuple[int, ToolCall]] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Create realistic demo data: agents, end users, multi-turn sessions over the last "
        "30 days with tool calls (about 5% failing), memories and checkpoints."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--sessions", type=int, default=300, help="How many sessions (default 300)."
        )
        parser.add_argument(
            "--seed", type=int, default=None, help="Random seed: the same seed, the same data."
        )
        parser.add_argument(
            "--now",
            default=None,
            help="The moment the 30 days end (ISO 8601); default: now. With --seed, "
            "a fixed --now makes the data identical, timestamps included.",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already holds agents or sessions.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count: int = options["sessions"]
        if count < 1:
            raise CommandError("--sessions must be a positive number.")
        now = self._parse_now(options["now"])
        if options["if_empty"] and (Agent.objects.exists() or Session.objects.exists()):
            self.stdout.write("The database already holds data; no demo data added (--if-empty).")
            return
        seed = options["seed"] if options["seed"] is not None else random.randrange(2**32)
        rng = random.Random(seed)
        started = time.perf_counter()
        totals = Totals()

        agents = self._agents(totals)
        users = self._users(rng, max(20, min(count // 8, 5000)), now, totals)
        # Session ids come from the seed, so a second run with the same seed would collide.
        ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]
        for start in range(0, count, 5000):
            if Session.objects.filter(pk__in=ids[start : start + 5000]).exists():
                raise CommandError(
                    f"Demo data with seed {seed} is already in this database; "
                    "use another --seed (or --if-empty)."
                )

        weights = [a.weight for a in AGENTS]
        progress = tqdm(
            total=count,
            unit="session",
            desc="Demo data",
            file=sys.stderr,
            disable=True if options["verbosity"] == 0 else None,
        )
        memory_rows: dict[tuple[object, int | None, str], Memory] = {}
        with progress:
            for start in range(0, count, CHUNK_SESSIONS):
                chunk = []
                for session_id in ids[start : start + CHUNK_SESSIONS]:
                    spec = rng.choices(AGENTS, weights)[0]
                    user = None if rng.random() < 0.08 else rng.choice(users)
                    rows = self._session(rng, session_id, spec, agents[spec.name], user, now)
                    chunk.append(rows)
                    self._memories_for(rng, rows.session, user, memory_rows)
                self._write(chunk, totals)
                progress.update(len(chunk))
                progress.set_postfix(messages=totals.messages, refresh=False)

        memories = list(memory_rows.values()) + self._shared_memories(agents)
        before = Memory.objects.count()
        Memory.objects.bulk_create(memories, batch_size=BATCH_ROWS, ignore_conflicts=True)
        totals.memories = Memory.objects.count() - before

        elapsed = time.perf_counter() - started
        rate = totals.messages / elapsed if elapsed else 0
        self.stdout.write(
            f"Demo data (seed {seed}): {totals.agents} agents, {totals.users} new end users, "
            f"{totals.sessions:,} sessions ({totals.active:,} active), "
            f"{totals.messages:,} messages, {totals.tool_calls:,} tool calls "
            f"({totals.errors:,} failed), {totals.checkpoints:,} checkpoints, "
            f"{totals.memories:,} memories in {elapsed:.1f}s ({rate:,.0f} messages/s)."
        )

    @staticmethod
    def _parse_now(raw: str | None) -> dt.datetime:
        if raw is None:
            return timezone.now().replace(microsecond=0)
        try:
            value = parse_datetime(raw)
        except ValueError:
            value = None
        if value is None:
            raise CommandError(f"--now {raw!r} is not an ISO 8601 date and time.")
        return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)

    def _agents(self, totals: Totals) -> dict[str, Agent]:
        agents = {}
        for spec in AGENTS:
            agent, created = agent_upsert(
                name=spec.name,
                type=spec.type,
                model=spec.model,
                description=spec.description,
                system_prompt=spec.system_prompt,
                config={
                    "temperature": 0.2,
                    "max_tokens": 4096,
                    "tools": list(spec.tools),
                    "approval_required": [t for t in spec.tools if TOOLS[t].needs_approval],
                },
                version="1.4.0" if spec.active else "0.9.2",
                active=spec.active,
            )
            agents[spec.name] = agent
            totals.agents += int(created)
        return agents

    @staticmethod
    def _users(rng: random.Random, n: int, now: dt.datetime, totals: Totals) -> list[User]:
        wanted = {}
        for i in range(n):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}.{i}@example.com".lower()
            wanted[email] = User(
                email=email,
                name=f"{first} {last}",
                phone_number=f"+4930{rng.randint(1_000_000, 9_999_999)}",
                user_data={"plan": rng.choice(USER_PLANS), "locale": rng.choice(LOCALES)},
                password="!",  # no usable password: end users never log in
                created_at=now - dt.timedelta(days=DAYS + rng.randint(1, 300)),
            )
        existing = set(User.objects.filter(email__in=wanted).values_list("email", flat=True))
        new = [user for email, user in wanted.items() if email not in existing]
        User.objects.bulk_create(new, batch_size=BATCH_ROWS)
        totals.users += len(new)
        return list(User.objects.filter(email__in=wanted).order_by("email"))

    def _session(
        self,
        rng: random.Random,
        session_id: uuid.UUID,
        spec: DemoAgent,
        agent: Agent,
        user: User | None,
        now: dt.datetime,
    ) -> SessionRows:
        active = spec.active and rng.random() < 0.04
        if active:
            t = now - dt.timedelta(minutes=rng.uniform(2, 180))
        elif spec.active:
            # A working-hours rhythm over the last 30 days.
            t = now - dt.timedelta(days=rng.uniform(0.15, DAYS - 0.5))
            t = t.replace(hour=rng.choice((8, 9, 10, 11, 13, 14, 15, 16, 17, 20)))
            if t > now - dt.timedelta(hours=3):
                t -= dt.timedelta(days=1)
        else:
            t = now - dt.timedelta(days=rng.uniform(DAYS - 8, DAYS))
        t = t.replace(microsecond=rng.randrange(1_000_000))
        question = rng.choice(spec.questions).format(n=rng.randint(100, 99_999))
        platform = rng.choice(PLATFORMS)
        metadata: dict[str, Any] = {
            "channel": platform,
            "locale": user.user_data.get("locale", "en-US") if user else "en-US",
            "client_version": f"2.{rng.randint(0, 9)}.{rng.randint(0, 20)}",
        }
        if rng.random() < 0.3:
            metadata["ab_test"] = rng.choice(["A", "B"])
        if rng.random() < 0.2:
            metadata["tags"] = rng.sample(["vip", "escalated", "beta", "mobile"], 2)
        session = Session(
            id=session_id,
            agent=agent,
            user=user,
            name=question[:120],
            platform=platform,
            metadata=metadata,
            created_at=t,
            last_activity_at=t,
        )
        rows = SessionRows(session)
        seq = 0

        def add(role: str, text: str, content_type: str = ContentType.TEXT, **extra: Any) -> int:
            nonlocal seq, t
            rows.messages.append(
                Message(
                    session=session,
                    agent=agent,
                    seq=seq,
                    role=role,
                    content_type=content_type,
                    text_content=text,
                    created_at=t,
                    **extra,
                )
            )
            seq += 1
            t += dt.timedelta(seconds=rng.uniform(0.5, 40), microseconds=rng.randrange(10**6))
            return len(rows.messages) - 1

        add(Role.SYSTEM, spec.system_prompt)
        turns = min(1 + int(rng.expovariate(1 / 3.6)), 30)
        for turn in range(turns):
            add(Role.USER, question if turn == 0 else rng.choice(FOLLOW_UPS))
            last_turn = turn == turns - 1
            if rng.random() < 0.75:
                names = rng.sample(spec.tools, min(len(spec.tools), 1 + int(rng.random() < 0.4)))
                index = add(
                    Role.ASSISTANT,
                    f"Let me use {' and '.join(names)}.",
                    ContentType.TOOL_USE,
                    model=spec.model,
                    input_tokens=rng.randint(200, 6000),
                    output_tokens=rng.randint(20, 300),
                    raw={"id": f"msg_{_hex(rng, 16)}", "stop_reason": "tool_use"},
                )
                # In a live session the last call may still wait for approval or be running.
                waiting = active and last_turn and rng.random() < 0.5
                for j, name in enumerate(names):
                    call, result = self._tool_call(rng, TOOLS[name], t, waiting)
                    call.call_id = f"call_{seq:03d}_{j}_{_hex(rng, 6)}"
                    rows.tool_calls.append((index, call))
                    if result is not None:
                        add(Role.TOOL, result, ContentType.TOOL_RESULT)
                if waiting:
                    break
            add(
                Role.ASSISTANT,
                rng.choice(ANSWERS),
                model=spec.model,
                input_tokens=rng.randint(300, 9000),
                output_tokens=rng.randint(40, 900),
                raw={"id": f"msg_{_hex(rng, 16)}", "stop_reason": "end_turn"},
            )
            if rng.random() < 0.12:
                rows.checkpoints.append(
                    Checkpoint(
                        session=session,
                        type=rng.choice(["state", "plan"]),
                        data={
                            "turn": turn,
                            "messages": seq,
                            "plan": ["gather facts", "act", "confirm"][: rng.randint(1, 3)],
                            "scratchpad": {"open_questions": rng.randint(0, 3), "notes": None},
                        },
                        created_at=t,
                    )
                )
        last = rows.messages[-1].created_at
        if last > now:
            # A long conversation started late: move it back so nothing lies in the future.
            self._shift(rows, now - last - dt.timedelta(seconds=rng.uniform(5, 600)))
            last = rows.messages[-1].created_at
        session.last_activity_at = last
        if not active:
            session.finished_at = last + dt.timedelta(seconds=rng.uniform(1, 120))
        return rows

    @staticmethod
    def _shift(rows: SessionRows, delta: dt.timedelta) -> None:
        rows.session.created_at += delta
        for message in rows.messages:
            message.created_at += delta
        for _index, call in rows.tool_calls:
            call.created_at += delta
            if call.finished_at is not None:
                call.finished_at += delta
        for checkpoint in rows.checkpoints:
            checkpoint.created_at += delta

    @staticmethod
    def _tool_call(
        rng: random.Random, tool: Tool, at: dt.datetime, waiting: bool
    ) -> tuple[ToolCall, str | None]:
        """A tool call and the text of its tool-result message (None while it is still open)."""
        duration = int(rng.lognormvariate(6, 1))
        call = ToolCall(
            tool_name=tool.name, input=tool.make_input(rng), created_at=at, duration_ms=duration
        )
        if waiting:
            call.state = ToolCallState.PENDING if tool.needs_approval else ToolCallState.RUNNING
            call.duration_ms = None
            return call, None
        call.finished_at = at + dt.timedelta(milliseconds=duration)
        if tool.needs_approval:
            denied = rng.random() < 0.08
            call.approval = {
                "decision": "denied" if denied else "approved",
                "by": "demo@logdeck.local",
                "at": at.isoformat(),
            }
            if denied:
                call.state = ToolCallState.DENIED
                return call, "Denied by the operator."
        # Only tools with failure modes of their own fail, mostly in their own way (now and then
        # rate-limited), so the error groups show a handful of recurring bugs, not noise. They
        # make about 60% of all calls, hence the higher rate: about 5% of all calls fail.
        if tool.errors and rng.random() < FAILURE_RATE / 0.6:
            if rng.random() < 0.9:
                message = rng.choice(tool.errors)(rng)
            else:
                message = rng.choice(COMMON_ERRORS)(rng)
            call.state = ToolCallState.FAILED
            call.is_error = True
            call.error_message = message
            call.error_fingerprint = error_fingerprint(message)
            return call, f"Error: {message}"
        call.state = ToolCallState.COMPLETED
        call.output = tool.make_output(rng)
        return call, "OK"

    @staticmethod
    def _memories_for(
        rng: random.Random,
        session: Session,
        user: User | None,
        rows: dict[tuple[object, int | None, str], Memory],
    ) -> None:
        if user is None or rng.random() > 0.25:
            return
        at = session.last_activity_at
        key = (session.agent_id, user.pk, "preferences")
        rows.setdefault(
            key,
            Memory(
                name="preferences",
                description="What this customer prefers.",
                content=rng.choice(
                    [
                        "Prefers email over phone.",
                        "Writes in German; answer in German.",
                        "Wants short answers with links.",
                        "Travels with a dog; needs pet-friendly hotels.",
                    ]
                ),
                agent_id=session.agent_id,
                user=user,
                source_session=session if rng.random() < 0.3 else None,
                read_mode=rng.choice([ReadMode.SYSTEM_PROMPT, ReadMode.TOOL]),
                metadata={"source": "conversation", "confidence": round(rng.random(), 2)},
                created_at=at,
                updated_at=at,
            ),
        )
        if rng.random() < 0.5:
            rows.setdefault(
                (session.pk, None, "scratchpad"),
                Memory(
                    name="scratchpad",
                    description="Notes for this conversation only.",
                    content=rng.choice(["Asked twice about the refund.", "Order number given."]),
                    session=session,
                    created_at=at,
                    updated_at=at,
                ),
            )
        rows.setdefault(
            (None, user.pk, "timezone"),
            Memory(
                name="timezone",
                content=rng.choice(["Europe/Berlin", "Europe/Lisbon", "Asia/Tokyo"]),
                user=user,
                read_mode=ReadMode.SYSTEM_PROMPT,
                access=Access.READ_ONLY,
                created_at=at,
                updated_at=at,
            ),
        )

    @staticmethod
    def _shared_memories(agents: dict[str, Agent]) -> list[Memory]:
        memories = [
            Memory(
                name="company-facts",
                description="Shared by every agent.",
                content="Logdeck Shop ships from Berlin; support hours 8-20 CET.",
                read_mode=ReadMode.SYSTEM_PROMPT,
                access=Access.READ_ONLY,
            )
        ]
        for agent in agents.values():
            memories.append(
                Memory(
                    name="style-guide",
                    content=f"{agent.name}: plain words, no emojis, cite sources.",
                    agent=agent,
                    read_mode=ReadMode.SYSTEM_PROMPT,
                    access=Access.READ_ONLY,
                )
            )
            memories.append(
                Memory(
                    name="escalation-policy",
                    content="Escalate to a human after two failed tool calls in a row.",
                    agent=agent,
                    read_mode=ReadMode.TOOL,
                )
            )
        return memories

    @staticmethod
    def _write(chunk: list[SessionRows], totals: Totals) -> None:
        """Write one chunk of sessions, their messages, tool calls and checkpoints atomically."""
        with transaction.atomic():
            Session.objects.bulk_create([r.session for r in chunk], batch_size=BATCH_ROWS)
            messages = [m for r in chunk for m in r.messages]
            Message.objects.bulk_create(messages, batch_size=BATCH_ROWS)
            calls = []
            for rows in chunk:
                for index, call in rows.tool_calls:
                    message = rows.messages[index]
                    call.session = rows.session
                    call.agent_id = rows.session.agent_id
                    call.message = message
                    calls.append(call)
            ToolCall.objects.bulk_create(calls, batch_size=BATCH_ROWS)
            checkpoints = [c for r in chunk for c in r.checkpoints]
            Checkpoint.objects.bulk_create(checkpoints, batch_size=BATCH_ROWS)
            rollups.rows_added(
                sessions=[r.session for r in chunk], messages=messages, tool_calls=calls
            )
        totals.sessions += len(chunk)
        totals.active += sum(1 for r in chunk if r.session.finished_at is None)
        totals.messages += len(messages)
        totals.tool_calls += len(calls)
        totals.errors += sum(1 for c in calls if c.is_error)
        totals.checkpoints += len(checkpoints)
