"""The demo data's generator: sessions built in memory from the catalogue and written with
`bulk_create` in chunks of sessions, one transaction per chunk; the derived numbers are counted by
`sessions_app.rollups` from the very rows written."""

from __future__ import annotations

import datetime as dt
import random
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from tqdm import tqdm

from agents.models import Agent, User
from agents.services import agent_upsert
from memories.models import Access, Memory, ReadMode
from sessions_app import rollups
from sessions_app.demo.catalogue import (
    AGENTS,
    ANSWERS,
    BATCH_ROWS,
    CHUNK_SESSIONS,
    COMMON_ERRORS,
    DAYS,
    FAILURE_RATE,
    FIRST_NAMES,
    FOLLOW_UPS,
    LAST_NAMES,
    LOCALES,
    PLATFORMS,
    TOOLS,
    USER_PLANS,
    DemoAgent,
    Tool,
    _hex,
)
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


class DemoSeedTaken(Exception):
    """Demo data from this seed is in the database already (its session ids would collide)."""


class DemoData:
    """Builds the demo data in memory, session by session, and writes it in chunks."""

    def build(
        self, *, count: int, seed: int | None, now: dt.datetime, show_progress: bool
    ) -> tuple[int, Totals]:
        """Write `count` sessions ending at `now`; returns the seed used and what was written."""
        seed = random.randrange(2**32) if seed is None else seed
        rng = random.Random(seed)
        totals = Totals()

        agents = self._agents(totals)
        users = self._users(rng, max(20, min(count // 8, 5000)), now, totals)
        # Session ids come from the seed, so a second run with the same seed would collide.
        ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]
        for start in range(0, count, 5000):
            if Session.objects.filter(pk__in=ids[start : start + 5000]).exists():
                raise DemoSeedTaken(
                    f"Demo data with seed {seed} is already in this database; "
                    "use another --seed (or --if-empty)."
                )

        weights = [a.weight for a in AGENTS]
        progress = tqdm(
            total=count,
            unit="session",
            desc="Demo data",
            file=sys.stderr,
            disable=None if show_progress else True,
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

        return seed, totals

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
