"""`python -m bench --scale 10k|100k|1m|10m [--json PATH] [--repeat N]`, or `--compare A B`.

Runs on PostgreSQL: DATABASE_URL if set, else postgres://postgres@127.0.0.1:5432/logdeck_bench
(created and migrated when missing). Pages are requested in-process through Django's test client.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/logdeck_bench"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Logdeck against the stock Django admin and the raw-SQL floor, on PostgreSQL.",
    )
    parser.add_argument("--scale", default="10k", help="messages: 10k, 100k, 1m, 10m or a number")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--repeat", type=int, default=7, help="timed repetitions per figure")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument(
        "--compare", type=Path, nargs="+", metavar="JSON", help="show growth across earlier runs"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the dataset even if there")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a measurement fails with an error"
    )
    parser.add_argument("--skip-backup", action="store_true", help="no backup/restore figures")
    parser.add_argument(
        "--skip-langgraph", action="store_true", help="no LangGraph checkpointer figures"
    )
    parser.add_argument(
        "--loaddata-max-rows",
        type=int,
        default=20_000,
        help="stock loaddata runs on a consistent sample of the backup this large (it restores "
        "about 600 rows/s: a million rows would take half an hour)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be at least 1 and --warmup at least 0.")
    return args


def configure_environment() -> str:
    """Settings as in production (DEBUG off), on the benchmark's PostgreSQL database."""
    url = os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("The benchmark runs on PostgreSQL: DATABASE_URL must be postgres://…")
    os.environ.setdefault("SECRET_KEY", "logdeck-benchmark-only-not-a-secret")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
    os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The dataset's rollups count by UTC day, and a kept dataset serves every later run: the
    # services must count its days the same way, whatever the shell's TIME_ZONE.
    os.environ["TIME_ZONE"] = "UTC"
    return url


def maintenance_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(maintenance_url(url), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            print(f"Creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.compare:
        from bench.report import compare

        print(compare(args.compare))
        return 0

    url = configure_environment()
    ensure_database(url)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings, setup_test_environment

    call_command("migrate", "--noinput", verbosity=0)
    setup_test_environment()
    # A page that is not built yet answers 404: that is a row saying n/a, not a log line.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No directory at")
    overrides = override_settings(
        ROOT_URLCONF="bench.urls",
        # Admin pages ask for static files; the manifest exists only after collectstatic.
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
    )
    with overrides:
        result = run(args, url)

    from bench.report import budgets, out_of_reach, table, write_json

    budgets(result["rows"])
    print()
    print(table(result["rows"]))
    misses = [r for r in result["rows"] if r["meets"] is False]
    unreachable = sum(map(out_of_reach, misses))
    print()
    print(
        f"targets: {sum(r['meets'] is True for r in result['rows'])} met, {len(misses)} missed"
        + (f" ({unreachable} of them out of reach: budget under the least)" if unreachable else "")
    )
    if args.json:
        write_json(args.json, result)
        print(f"JSON: {args.json}")
    errors = [
        f"{r['title']} ({side}): {r[side]['note']}"
        for r in result["rows"]
        for side in ("logdeck", "stock", "floor")
        if r[side]["note"].startswith("error")
    ]
    for error in errors:
        print(f"ERROR {error}", file=sys.stderr)
    return 1 if errors and args.strict else 0


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    import psycopg
    from django.db import connection
    from django.test import Client

    from agents.models import User
    from agents.services import api_key_create
    from bench import cases, dataset, throughput
    from bench.measure import Figure
    from bench.report import row

    started = time.perf_counter()
    messages = dataset.scale_messages(args.scale)
    conn = psycopg.connect(url, autocommit=True)
    loaded = None if args.rebuild else dataset.existing(conn, messages)
    if loaded is None:
        log(f"Building the dataset: {messages:,} messages ...")
        connection.close()
        loaded = dataset.build(conn, messages, log=log)
        log(f"  built in {loaded.built_seconds:.1f} s")
    else:
        log(f"Reusing the dataset of {messages:,} messages")
        dead = dataset.vacuum(conn)
        if dead:
            log(f"  vacuumed {dead:,} dead rows that earlier runs left")

    # The actors: a superuser for the console and admins, API keys for the API.
    user = User.objects.filter(email="bench@logdeck.test").first()
    if user is None:
        user = User.objects.create_superuser("bench@logdeck.test", is_staff=True)
    user.api_keys.filter(name="benchmark").delete()  # the last run's keys
    read_key = api_key_create(user=user, scope="read", name="benchmark").secret
    write_key = api_key_create(user=user, scope="write", name="benchmark").secret
    console = Client(raise_request_exception=False)
    console.force_login(user)
    api = Client(raise_request_exception=False)

    ctx = cases.context(console, api, read_key, conn)
    rows = []
    for case in cases.cases(ctx):
        log(f"  {case.title}")
        figures = cases.run_case(case, warmup=args.warmup, repeat=args.repeat)
        rows.append(row(case.key, case.title, case.kind, figures))

    log("  ingestion")
    append = throughput.api_append(api, write_key, warmup=1, repeat=max(3, args.repeat))
    rows.append(
        row(
            "ingest.api_append",
            "ingest: API batch append, 100 msgs",
            "other",
            {
                "logdeck": append,
                "stock": throughput.bulk_create_rate(),
                "floor": throughput.copy_rate(url),
            },
            unit="msgs/s",
        )
    )
    if not args.skip_langgraph:
        log("  LangGraph checkpointers")
        from bench import langgraph_steps

        lg = langgraph_steps.measure(url, write_key, warmup=args.warmup, repeat=args.repeat)
        for key, title in (
            ("framework", "langgraph: three empty API calls over HTTP"),
            ("step", "langgraph: one step (put + put_writes + get_tuple)"),
            ("newest", "langgraph: list 10 newest of a 10,000-checkpoint thread"),
            ("deep", "langgraph: list 10 from the 100th oldest of 10,000"),
        ):
            rows.append(row(f"langgraph.{key}", title, "langgraph", lg[key]))
    scratch = throughput.Scratch(maintenance_url(url), url, url.rsplit("/", 1)[1] + "_scratch")
    scratch.prepare_template()
    rows.append(
        row(
            "ingest.seed_demo",
            "ingest: seed_demo",
            "other",
            {
                "logdeck": throughput.seed_demo_rate(scratch),
                "stock": Figure(note="—"),
                "floor": Figure(note="—"),
            },
            unit="msgs/s",
        )
    )
    if not args.skip_backup:
        connection.close()
        with tempfile.TemporaryDirectory(prefix="logdeck-bench-backup-") as tmp:
            figures = throughput.backup_and_restore(
                database_url=url,
                scratch=scratch,
                workdir=Path(tmp),
                loaddata_max_rows=args.loaddata_max_rows,
                log=log,
            )
        rows.append(
            row(
                "backup",
                "backup: dumpdata (README command)",
                "other",
                {"logdeck": figures["backup"], "stock": figures["stock_dumpdata"],
                 "floor": Figure(note="—")},
                unit="rows/s",
            )
        )  # fmt: skip
        sampled = "restore_sample" in figures
        loaddata_rows = figures["loaddata"].extra["rows"]
        rows.append(
            row(
                "restore",
                "restore vs loaddata"
                + (f" (loaddata: {loaddata_rows:,}-row sample)" if sampled else ""),
                "other",
                {
                    "logdeck": figures["restore"],
                    "stock": figures["loaddata"],
                    "floor": Figure(note="—"),
                },
                unit="rows/s",
            )
        )
        if sampled:
            rows.append(
                row(
                    "restore.sample",
                    "restore vs loaddata, the same sample",
                    "other",
                    {"logdeck": figures["restore_sample"], "stock": figures["loaddata"],
                     "floor": Figure(note="—")},
                    unit="rows/s",
                )
            )  # fmt: skip
    conn.close()
    with psycopg.connect(url) as info:
        server = info.execute("SHOW server_version").fetchone()[0]
    return {
        "logdeck_bench": 1,
        "scale": args.scale,
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        "repeat": args.repeat,
        "warmup": args.warmup,
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": server},
        "dataset": loaded.as_dict(),
        "rows": rows,
    }


if __name__ == "__main__":
    sys.exit(main())
