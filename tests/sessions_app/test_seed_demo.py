import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from agents.models import Agent, User
from memories.models import Memory
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import Checkpoint, Message, Session, ToolCall

pytestmark = pytest.mark.django_db

NOW = "2026-11-20T12:00:00+00:00"


def _seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, "-v0", stdout=out)
    return out.getvalue()


def test_it_creates_sessions_with_exact_counters_and_gapless_seq():
    _seed("--sessions", "60", "--seed", "3")

    assert Session.objects.count() == 60
    sessions = Session.objects.annotate(
        n_messages=Count("messages", distinct=True),
        calls=Count("tool_calls", distinct=True),
        errors=Count("tool_calls", filter=Q(tool_calls__is_error=True), distinct=True),
        first_seq=Min("messages__seq"),
        last_seq=Max("messages__seq"),
    )
    for s in sessions:
        assert (s.message_count, s.tool_call_count, s.error_count) == (
            s.n_messages,
            s.calls,
            s.errors,
        )
        assert (s.first_seq, s.last_seq) == (0, s.message_count - 1)  # with unique seq: gapless
    assert Message.objects.count() == sum(s.message_count for s in sessions)


def test_it_makes_realistic_data_over_the_last_thirty_days():
    output = _seed("--sessions", "400", "--seed", "1", "--now", NOW)
    now = dt.datetime.fromisoformat(NOW)

    agents = Agent.objects.all()
    assert agents.count() >= 5
    assert len({a.model for a in agents}) >= 5
    assert len({tuple(a.config["tools"]) for a in agents}) == agents.count()
    assert User.objects.end_users().count() >= 20
    assert Session.objects.filter(user__isnull=True).exists()
    assert Session.objects.filter(user__isnull=False).count() > 300

    # Spread over 30 days, nothing in the future, some sessions still running.
    first = Session.objects.aggregate(first=Min("created_at"))["first"]
    assert now - dt.timedelta(days=31) < first < now - dt.timedelta(days=25)
    assert not Message.objects.filter(created_at__gt=now).exists()
    days = {d.date() for d in Session.objects.values_list("created_at", flat=True)}
    assert len(days) >= 25
    assert 0 < Session.objects.active().count() < 40

    # Multi-turn with tool calls, about 5% failing with a handful of recurring errors.
    assert Message.objects.count() > 400 * 8
    calls = ToolCall.objects.count()
    failed = ToolCall.objects.filter(is_error=True)
    assert 0.03 < failed.count() / calls < 0.07
    messages = set(failed.values_list("error_message", flat=True))
    groups = set(failed.values_list("tool_name", "error_fingerprint"))
    assert len(messages) > 3 * len(groups), "ids and numbers inside, so grouping matters"
    assert 8 <= len(groups) <= 30
    for call in failed[:50]:
        assert call.error_fingerprint == error_fingerprint(call.error_message)
        assert call.state == "failed"
    assert ToolCall.objects.filter(state="denied", approval__decision="denied").exists()
    assert Checkpoint.objects.count() > 20
    assert Memory.objects.filter(agent__isnull=True, user__isnull=True).exists()
    assert Memory.objects.filter(agent__isnull=False, user__isnull=True).exists()
    assert Memory.objects.filter(agent__isnull=False, user__isnull=False).exists()
    assert Memory.objects.filter(agent__isnull=True, user__isnull=False).exists()
    assert f"{Session.objects.count():,} sessions" in output


def test_it_is_repeatable_with_a_seed_and_a_fixed_now():
    def content() -> tuple[list[tuple], list[tuple]]:
        messages = list(
            Message.objects.order_by("session_id", "seq").values_list(
                "session_id", "seq", "role", "text_content", "created_at", "raw"
            )
        )
        calls = list(
            ToolCall.objects.order_by("session_id", "call_id").values_list(
                "session_id", "call_id", "tool_name", "input", "output", "error_message"
            )
        )
        return messages, calls

    _seed("--sessions", "30", "--seed", "9", "--now", NOW)
    first = content()
    Session.objects.all().delete()
    _seed("--sessions", "30", "--seed", "9", "--now", NOW)

    assert content() == first
    assert first[0] and first[1]


def test_it_skips_when_data_exists_with_if_empty():
    _seed("--sessions", "5", "--seed", "1")
    before = Message.objects.count()

    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)

    assert "already holds data" in out.getvalue()
    assert Message.objects.count() == before


def test_it_fills_an_empty_database_with_if_empty():
    _seed("--sessions", "5", "--if-empty")
    assert Session.objects.count() == 5


def test_it_refuses_the_same_seed_twice_and_bad_arguments():
    _seed("--sessions", "5", "--seed", "4")
    for args, message in (
        (("--sessions", "5", "--seed", "4"), "already in this database"),
        (("--sessions", "0"), "positive"),
        (("--now", "yesterday-ish"), "not an ISO 8601"),
    ):
        with pytest.raises(CommandError, match=message):
            _seed(*args)
    assert Session.objects.count() == 5


def test_it_writes_in_bulk_with_few_queries(django_assert_max_num_queries):
    # Agents: 6 upserts (lock + insert); users: 3; id check: 1; per chunk of 250 sessions one
    # savepoint and ~6 bulk inserts; memories: 3. Never one query per row.
    with django_assert_max_num_queries(60):
        _seed("--sessions", "500", "--seed", "2")
    assert Message.objects.count() > 5000


def test_it_puts_active_sessions_in_the_last_hours():
    _seed("--sessions", "300", "--seed", "6")
    active = Session.objects.active()
    assert active.exists()
    assert all(s.created_at > timezone.now() - dt.timedelta(hours=4) for s in active)
    assert not Session.objects.finished().filter(finished_at__lt=F("created_at")).exists()
