import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from tests.factories import SessionFactory, conversation

ROOT = Path(__file__).resolve().parents[2]


def _status_subprocess(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "status"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db
def test_it_reports_the_database_migrations_rows_and_size():
    conversation(SessionFactory(), turns=3)
    out = StringIO()

    call_command("status", stdout=out)

    text = out.getvalue()
    vendor = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    assert f"Database:   {vendor}" in text
    assert f"Version:    {vendor} " in text
    assert "Reachable:  yes" in text
    assert "Migrations: all applied" in text
    assert "Size:" in text
    lines = dict(line.split()[:2] for line in text.splitlines() if line.startswith("  "))
    assert lines["sessions_app.Session"] == "1"
    assert lines["sessions_app.Message"] == "6"
    assert lines["auth.Group"] == "2"


@pytest.mark.django_db
def test_it_estimates_big_tables_instead_of_counting_them(monkeypatch):
    from sessions_app.management.commands import status

    monkeypatch.setattr(status, "EXACT_COUNT_LIMIT", 4)  # a "big" table is one of 4+ rows here
    conversation(SessionFactory(), turns=3)
    out = StringIO()

    call_command("status", stdout=out)

    lines = dict(line.split()[:2] for line in out.getvalue().splitlines() if line.startswith("  "))
    assert lines["sessions_app.Message"].startswith("~")
    assert int(lines["sessions_app.Message"][1:]) >= 4
    assert lines["sessions_app.Session"] == "1"


def test_it_says_so_when_sqlite_is_not_there_and_exits_non_zero(tmp_path):
    result = _status_subprocess(SQLITE_PATH=str(tmp_path / "missing" / "logdeck.sqlite3"))

    assert result.returncode == 1
    assert "Database unreachable" in result.stderr
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "missing").exists()


def test_it_says_so_when_postgres_is_unreachable_and_exits_non_zero():
    # Nothing listens on port 1: refused at once, no pool retries, no traceback.
    result = _status_subprocess(DATABASE_URL="postgres://logdeck@127.0.0.1:1/logdeck")

    assert result.returncode == 1
    assert "Database unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert "PostgreSQL database 'logdeck' on 127.0.0.1:1" in result.stdout


def test_it_reports_pending_migrations(tmp_path):
    db = tmp_path / "fresh.sqlite3"
    subprocess.run(
        [sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(db)!r}).close()"], check=True
    )

    result = _status_subprocess(SQLITE_PATH=str(db))

    assert result.returncode == 0, result.stderr
    assert "pending" in result.stdout
    assert "table missing" in result.stdout
