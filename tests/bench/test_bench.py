"""The benchmark's code paths on a tiny dataset: the data it builds is what the services would
write, and every measurement runs (slow numbers are fine here; no timing is asserted)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import IntegrityError, connection
from django.db.models import Count, Max, Min
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import Client

from agents.models import User
from agents.services import api_key_create
from bench import cases, dataset, throughput
from bench.measure import Figure, measure_together, percentile, shown_rows
from bench.report import budgets, compare, out_of_reach, row, table
from sessions_app.fingerprints import error_fingerprint
from sessions_app.models import DailyActivity, Message, Session, ToolCall, ToolStateCount
from sessions_app.rollups import BY_NAME
from sessions_app.rollups.daily_activity import ACTIVITY_COLUMNS
from tests.factories import AgentFactory, SessionFactory, error_group_days

MESSAGES = 600
DAILY_ACTIVITY = ("agent_id", "day", *ACTIVITY_COLUMNS)


@pytest.fixture
def built(db: None, settings) -> dataset.Dataset:
    """A tiny dataset, loaded inside the test's transaction (so it is rolled back after)."""
    settings.ROOT_URLCONF = "bench.urls"
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with connection.cursor() as cursor:
        # A statement first, so psycopg sees the test's open transaction and nests savepoints in
        # it (on an idle connection its transaction block would begin and COMMIT its own).
        cursor.execute("SELECT 1")
    return dataset.build(connection.connection, MESSAGES, log=lambda message: None)


def test_it_reads_scales() -> None:
    assert dataset.scale_messages("10k") == 10_000
    assert dataset.scale_messages("1m") == 1_000_000
    assert dataset.scale_messages("2500") == 2_500
    with pytest.raises(SystemExit):
        dataset.scale_messages("lots")


def test_it_takes_the_nearest_rank_percentile() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.95) == 5.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0


@pytest.mark.django_db
def test_it_times_the_sides_of_a_row_in_turns() -> None:
    calls: list[str] = []

    def side(name: str):
        return lambda: calls.append(name)

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("HTTP 500")

    figures = measure_together(
        {"logdeck": side("L"), "stock": side("S"), "floor": broken, "none": None},
        warmup={"logdeck": 1, "stock": 0},
        repeat=3,
    )
    # Warm-ups first (the broken side fails in its timed round), then one run of each side a
    # round, then one more run of each to count queries.
    assert calls == ["L", "L", "S", "broken", "L", "S", "L", "S", "L", "S"]
    assert list(figures) == ["logdeck", "stock", "floor", "none"]
    assert len(figures["logdeck"].extra["samples_ms"]) == 3
    assert figures["stock"].ok and figures["stock"].queries == 0
    assert figures["floor"].note == "error: HTTP 500"
    assert figures["none"].note == "—"


def test_it_judges_rows_against_the_targets() -> None:
    fast = Figure(median_ms=2.0, p95_ms=3.0, queries=3)
    stock = Figure(median_ms=30.0)
    page1 = row(
        "a", "page", "page1", {"logdeck": fast, "stock": stock, "floor": Figure(median_ms=1.0)}
    )
    deep = row(
        "b", "deep", "deep", {"logdeck": fast, "stock": stock, "floor": Figure(median_ms=0.1)}
    )
    gone = Figure(note="n/a (404)")
    missing = row("c", "n/a", "page1", {"logdeck": gone, "stock": stock, "floor": Figure()})
    admin = row(
        "d", "admin", "admin", {"logdeck": fast, "stock": stock, "floor": Figure(median_ms=0.1)}
    )

    assert (page1["stock_over_logdeck"], page1["logdeck_over_floor"], page1["meets"]) == (
        15.0,
        2.0,
        False,
    )
    assert deep["meets"] is False and deep["logdeck_over_floor"] == 20.0
    assert missing["meets"] is None
    # The admin's changelists show their ratios and are held to growth alone.
    assert (admin["stock_over_logdeck"], admin["logdeck_over_floor"]) == (15.0, 20.0)
    assert admin["meets"] is None and admin["target"] == ""
    assert "n/a (404)" in table([page1, deep, missing, admin])


def test_it_names_the_targets_no_page_could_meet() -> None:
    def ms(median: float) -> Figure:
        return Figure(median_ms=median, p95_ms=median, queries=1)

    none = Figure(note="—")
    rows = [
        row("framework.console", "empty page", "other", {"logdeck": ms(3.0), "stock": none,
                                                         "floor": none}),
        row("framework.api", "empty list", "other", {"logdeck": ms(1.0), "stock": none,
                                                     "floor": none}),
        # 100x a 80 ms stock page is 0.8 ms: under the empty page (3.0) and the bare SQL (1.5).
        row("console.deep", "deep", "deep", {"logdeck": ms(15.0), "stock": ms(80.0),
                                             "floor": ms(1.5)}),
        # Ten floors (20 ms) are the tighter target here, and above the least (3.0 + 2.0).
        row("console.transcript", "transcript", "other", {"logdeck": ms(25.0), "stock": ms(90.0),
                                                          "floor": ms(2.0)}),
        # 20x a 100 ms stock list is 5 ms, above its empty twin (1.0) and the SQL (1.2).
        row("api.calls", "calls", "page1", {"logdeck": ms(6.0), "stock": ms(100.0),
                                            "floor": ms(1.2)}),
        row("admin.messages", "admin", "admin", {"logdeck": ms(30.0), "stock": ms(90.0),
                                                 "floor": ms(1.0)}),
    ]  # fmt: skip

    budgets(rows)

    by_key = {r["key"]: r for r in rows}
    assert (by_key["console.deep"]["budget_ms"], by_key["console.deep"]["least_ms"]) == (0.8, 4.5)
    assert by_key["console.transcript"]["budget_ms"] == 20.0
    assert by_key["console.transcript"]["least_ms"] == 5.0
    assert (by_key["api.calls"]["budget_ms"], by_key["api.calls"]["least_ms"]) == (5.0, 2.2)
    assert by_key["admin.messages"]["budget_ms"] is None  # no target, no budget
    assert [r["key"] for r in rows if out_of_reach(r)] == ["console.deep"]
    text = table(rows)
    assert "0.8 < 4.5 least" in text and "20.0 " in text and "5.0 " in text


def test_it_compares_runs_at_several_scales(tmp_path: Path) -> None:
    paths = []
    for scale, messages, median, rows in (("1m", 10**6, 4.5, 50), ("10k", 10**4, 2.0, 4)):
        run = one_page_run(scale, messages, median, 3, rows=rows)
        # A rate's "rows" are the rows it wrote, not records a page showed.
        restore = Figure(median_ms=1.0, extra={"rate": 1000, "rows": messages})
        run["rows"].append(
            row("restore", "a restore", "other", {"logdeck": restore, "stock": Figure(),
                                                  "floor": Figure()}, unit="rows/s")
        )  # fmt: skip
        paths.append(tmp_path / f"{scale}.json")
        paths[-1].write_text(json.dumps(run))

    text = compare(paths)

    assert text.index("10k") < text.index("1m")  # ordered by size, whatever the argument order
    assert "2.25x MISS  same     4/50" in text  # growth, queries, and the rows each page showed
    restore_line = next(line for line in text.splitlines() if line.startswith("a restore"))
    assert "10000" not in restore_line and "1.00x" in restore_line


def test_it_counts_the_records_a_page_shows() -> None:
    table_page = HttpResponse(
        "<table><thead><tr><th>When</th></tr></thead><tbody>"
        '<tr class="has-errors"><td>a</td></tr>\n<tr>\n<td>b</td></tr>'
        '<tr id="load-more" class="load-more-row"><td>Load more</td></tr></tbody></table>'
    )
    transcript = HttpResponse(
        '<article class="msg role-user" id="m-0"></article><article class="msg role-assistant '
        'msg-failed" id="m-1"><table><tbody><tr><td>x</td></tr></tbody></table></article>'
    )
    assert shown_rows(table_page) == 2
    assert shown_rows(transcript) == 2  # messages, not the tables inside them
    assert shown_rows(JsonResponse({"items": [{}, {}, {}], "next_cursor": "x"})) == 3
    assert shown_rows(JsonResponse([1, 2], safe=False)) is None  # not a list page
    assert shown_rows(HttpResponse("<p>No sessions match.</p>")) is None
    assert shown_rows(StreamingHttpResponse(iter([b"x"]))) is None
    assert shown_rows(None) is None  # a floor's call returns nothing


@pytest.mark.parametrize(
    ("small", "large", "label"), [(5, 6, "GROW 5/6"), (6, 5, "fewer 6/5"), (5, 5, "same")]
)
def test_it_flags_only_query_counts_that_grow(
    tmp_path: Path, small: int, large: int, label: str
) -> None:
    paths = [tmp_path / "10k.json", tmp_path / "1m.json"]
    paths[0].write_text(json.dumps(one_page_run("10k", 10**4, 2.0, small)))
    paths[1].write_text(json.dumps(one_page_run("1m", 10**6, 2.0, large)))
    assert label in compare(paths)


def one_page_run(
    scale: str, messages: int, median: float, queries: int, *, rows: int | None = None
) -> dict:
    figure = Figure(median_ms=median, p95_ms=median, queries=queries, extra={"shown_rows": rows})
    return {
        "scale": scale,
        "dataset": {"messages": messages},
        "rows": [row("x", "a page", "page1", {"logdeck": figure, "stock": Figure(),
                                              "floor": Figure()})],
    }  # fmt: skip


@pytest.mark.postgres
def test_it_builds_a_dataset_the_services_could_have_written(built: dataset.Dataset) -> None:
    assert Message.objects.count() == MESSAGES
    assert Session.objects.count() == built.sessions
    big = Session.objects.get(pk=built.big_session)
    assert big.message_count == min(dataset.BIG_SESSION_MESSAGES, MESSAGES // 2)
    # Exact counters and gapless seq in every session.
    per_session = Message.objects.values("session_id").annotate(
        n=Count("id"), low=Min("seq"), high=Max("seq")
    )
    counters = dict(Session.objects.values_list("pk", "message_count"))
    for stats in per_session:
        assert (stats["low"], stats["high"] + 1) == (0, stats["n"])
        assert counters[stats["session_id"]] == stats["n"]
    for session in Session.objects.all():
        calls = ToolCall.objects.filter(session=session)
        assert session.tool_call_count == calls.count()
        assert session.error_count == calls.filter(is_error=True).count()
    for call in ToolCall.objects.filter(is_error=True):
        assert call.error_fingerprint == error_fingerprint(call.error_message)
    # The error groups' rollup is what the services' recount gives.
    rollup = error_group_days()
    assert rollup and BY_NAME["error groups by day"].rebuild() == len(rollup)
    assert rollup == error_group_days()
    # So are the tool calls by state.
    states = set(ToolStateCount.objects.values_list("agent_id", "state", "calls"))
    assert states and BY_NAME["tool calls by state"].rebuild() == len(states)
    assert states == set(ToolStateCount.objects.values_list("agent_id", "state", "calls"))
    # So is the daily activity, with the sessions started and still active each day.
    activity = set(DailyActivity.objects.values_list(*DAILY_ACTIVITY))
    assert activity and BY_NAME["daily activity"].rebuild() == len(activity)
    assert activity == set(DailyActivity.objects.values_list(*DAILY_ACTIVITY))
    assert sum(row[5] for row in activity) == Session.objects.count()
    assert dataset.existing(connection.connection, MESSAGES) is not None
    assert dataset.existing(connection.connection, MESSAGES * 2) is None


@pytest.mark.postgres
def test_it_measures_every_row(built: dataset.Dataset) -> None:
    user = User.objects.create_superuser("bench@logdeck.test")
    console = Client(raise_request_exception=False)
    console.force_login(user)
    key = api_key_create(user=user, scope="read").secret
    ctx = cases.context(console, Client(), key, connection.connection)

    rows, shown = [], {}
    for case in cases.cases(ctx):
        figures = cases.run_case(case, warmup=0, repeat=1)
        rows.append(row(case.key, case.title, case.kind, figures))
        shown[case.key] = tuple(
            figures[side].extra.get("shown_rows") for side in ("logdeck", "stock")
        )
        # The stock admin and the floor are always there; Logdeck's pages may not be built yet.
        assert figures["stock"].ok or figures["stock"].note == "—", (case.key, figures["stock"])
        assert figures["floor"].ok or figures["floor"].note == "—", (case.key, figures["floor"])
        assert figures["logdeck"].ok or figures["logdeck"].note.startswith("n/a"), (
            case.key,
            figures["logdeck"],
        )
    assert len(rows) >= 18
    assert "console: sessions, first page" in table(rows)
    # Each page showed its records, and the stock admin's list the same number.
    first_page = min(cases.PAGE, built.sessions)
    assert shown["console.sessions"] == (first_page, first_page)
    assert shown["api.messages"] == (cases.PAGE, cases.PAGE)
    big = Session.objects.get(pk=built.big_session).message_count
    assert shown["console.transcript"] == (min(100, big), min(cases.PAGE, big))
    assert shown["framework.api"] == (0, None)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_makes_the_ingestion_floors_check_foreign_keys(monkeypatch) -> None:
    # Rolled back before COMMIT, deferred foreign keys would never be checked: COPY and
    # bulk_create would be timed without work that every stored row (and every append) pays.
    agent = AgentFactory()

    real_rows = throughput._batch_rows

    def orphans(session_id: uuid.UUID, agent_id: int, count: int):
        return real_rows(uuid.uuid4(), agent_id, count)

    monkeypatch.setattr(throughput, "_batch_rows", orphans)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        throughput.copy_rate(_database_url(), rows=1)

    monkeypatch.setattr(
        throughput, "session_start", lambda **kwargs: Session(id=uuid.uuid4(), agent=agent)
    )
    with pytest.raises(IntegrityError):
        throughput.bulk_create_rate(rows=1)


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_vacuums_the_dead_rows_a_reused_dataset_holds() -> None:
    # The ingestion figures leave dead rows behind them; with autovacuum off they would slow
    # the planning of the next run's pages.
    sessions = [SessionFactory() for _ in range(30)]
    Session.objects.filter(pk__in=[s.pk for s in sessions]).delete()
    with connection.cursor() as cursor:  # the deleting backend reports its counts now
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")
    with psycopg.connect(_database_url(), autocommit=True) as conn:
        dead = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'sessions_app_session'"
        ).fetchone()[0]
        assert dead >= 30

        assert dataset.vacuum(conn) >= 30

        left = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'sessions_app_session'"
        ).fetchone()[0]
        assert left == 0


MESSAGE_SAME = ("seq", "role", "content_type", "text_content", "media_url", "model")
CALL_SAME = ("call_id", "tool_name", "input", "output", "state", "is_error", "error_message",
             "error_fingerprint")  # fmt: skip


@pytest.mark.django_db
def test_it_floors_the_append_with_the_rows_the_api_stores() -> None:
    # The COPY floor and the stock bulk_create store what two batch appends store, row for row;
    # a floor of lighter rows (messages without their tool calls) would be no floor for it.
    user = User.objects.create_superuser("bench@logdeck.test")
    key = api_key_create(user=user, scope="write").secret
    session = SessionFactory()
    for start in (0, throughput.BATCH):
        response = Client().post(
            f"/api/v1/sessions/{session.pk}/messages",
            throughput.batch_body(start),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 201, response.content
    stored = Message.objects.filter(session=session).order_by("seq")
    assert stored.count() == 2 * throughput.BATCH

    rows = throughput._batch_rows(session.pk, session.agent_id, 2 * throughput.BATCH)
    assert [tuple(m[f] for f in MESSAGE_SAME) for m, _ in rows] == list(
        stored.values_list(*MESSAGE_SAME)
    )
    calls = [call for _, message_calls in rows for call in message_calls]
    assert len(calls) == 67 and sum(c["is_error"] for c in calls) == 4  # one call in twenty
    assert [tuple(c[f] for f in CALL_SAME) for c in calls] == list(
        ToolCall.objects.filter(session=session).order_by("id").values_list(*CALL_SAME)
    )


@pytest.mark.django_db
def test_the_framework_pages_are_closed_and_empty(settings) -> None:
    settings.ROOT_URLCONF = "bench.urls"
    anonymous = Client()
    assert anonymous.get("/bench-framework/page/").status_code == 302
    assert anonymous.get("/bench-framework/api/sessions").status_code == 401

    user = User.objects.create_superuser("bench@logdeck.test")
    console = Client()
    console.force_login(user)
    page = console.get("/bench-framework/page/")
    assert page.status_code == 200
    assert "Nothing to show." in page.content.decode()
    key = api_key_create(user=user, scope="read").secret
    listed = Client().get(
        "/bench-framework/api/sessions", headers={"Authorization": f"Bearer {key}"}
    )
    assert listed.status_code == 200
    assert listed.json() == {"items": [], "next_cursor": None}


def test_the_langgraph_rows_replay_a_recorded_step_and_judge_it_against_postgres_saver():
    from langgraph.checkpoint.memory import InMemorySaver

    from bench import langgraph_steps

    saver = InMemorySaver()
    step = langgraph_steps.step_call(saver, "t")
    first, second = step(), step()
    assert second.parent_config["configurable"]["checkpoint_id"] == first.checkpoint["id"]
    assert second.pending_writes  # the recorded task's writes, read back with it
    ids = langgraph_steps.fill_thread(saver, "long", 30)
    newest = langgraph_steps.list_call(saver, "long", None)()
    deep = langgraph_steps.list_call(saver, "long", ids[20])()
    assert [t.checkpoint["id"] for t in newest] == ids[::-1][:10]
    assert [t.checkpoint["id"] for t in deep] == ids[:20][::-1][:10]

    fast, slow = Figure(median_ms=3.0), Figure(median_ms=1.0)
    judged = row(
        "langgraph.step", "step", "langgraph", {"logdeck": fast, "stock": slow, "floor": slow}
    )
    assert judged["target"] == "<=3x PostgresSaver" and judged["meets"] is True
    over = row(
        "langgraph.step",
        "step",
        "langgraph",
        {"logdeck": Figure(median_ms=3.1), "stock": slow, "floor": slow},
    )
    assert over["meets"] is False
    listed = row(
        "langgraph.deep", "deep", "langgraph", {"logdeck": fast, "stock": slow, "floor": slow}
    )
    assert listed["meets"] is None and listed["logdeck"]["queries"] is None
