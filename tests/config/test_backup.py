"""Backups: the documented dumpdata command restores with loaddata into a freshly migrated,
empty database with every row and every field equal — SQLite to SQLite, PostgreSQL to
PostgreSQL, SQLite to PostgreSQL.

Each side is its own database, driven by real `manage.py` subprocesses (as an operator would);
the rows are compared as Python values read by the ORM on each side (tests/config/backup_rows.py).
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
import pytest
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]

# The command in README.md and the contracts, word for word.
BACKUP = shlex.split(
    "dumpdata --format jsonl --natural-foreign -e contenttypes -e auth.permission -e sessions "
    "-o backup.jsonl"
)
RESTORE = ["loaddata", "backup.jsonl"]
# The other forms a backup is made in: the plain command most people type, to a file or to
# standard output, and the README's flags in XML. Each restores with `loaddata <file>`.
FORMS = {
    "jsonl": (BACKUP, "backup.jsonl"),
    "plain -o": (["dumpdata", "-o", "backup.json"], "backup.json"),
    "plain stdout": (["dumpdata"], "backup.json"),
    "xml": (
        shlex.split(
            "dumpdata --format xml --natural-foreign -e contenttypes -e auth.permission "
            "-e sessions -o backup.xml"
        ),
        "backup.xml",
    ),
}


def _manage(db_env: dict[str, str], *args: str, cwd: Path) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "DEBUG": "1", "PYTHONPATH": str(ROOT), **db_env}
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _command(db_env: dict[str, str], *args: str, cwd: Path) -> str:
    return _manage(db_env, str(ROOT / "manage.py"), *args, cwd=cwd)


def _snapshot(db_env: dict[str, str], tmp_path: Path, name: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.pickle"
    _manage(db_env, "-m", "tests.config.backup_rows", "snapshot", str(out), cwd=ROOT)
    with out.open("rb") as f:
        return pickle.load(f)


def _fill(db_env: dict[str, str], tmp_path: Path) -> None:
    _command(db_env, "migrate", "-v0", cwd=tmp_path)
    _command(db_env, "seed_demo", "--sessions", "25", "--seed", "11", "-v0", cwd=tmp_path)
    _manage(db_env, "-m", "tests.config.backup_rows", "edge-cases", cwd=ROOT)


def _assert_same_rows(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert set(after) == set(before)
    for label, rows in before.items():
        assert set(after[label]) == set(rows), f"{label}: rows differ"
        for pk, fields in rows.items():
            for name, value in fields.items():
                restored = after[label][pk][name]
                assert restored == value, f"{label} {pk} {name}: {value!r} became {restored!r}"


def _round_trip(
    source: dict[str, str],
    target: dict[str, str],
    tmp_path: Path,
    *,
    restores: int = 1,
    form: str = "jsonl",
) -> None:
    _fill(source, tmp_path)
    before = _snapshot(source, tmp_path, "before")
    backup, file_name = FORMS[form]
    written = _command(source, *backup, cwd=tmp_path)
    if "-o" not in backup:
        (tmp_path / file_name).write_text(written)
    _command(target, "migrate", "-v0", cwd=tmp_path)
    for _ in range(restores):
        # The first restore inserts into empty tables; another one updates the rows in place.
        _command(target, "loaddata", file_name, cwd=tmp_path)
    after = _snapshot(target, tmp_path, "after")

    # The data really is there: demo data, and every edge case.
    assert len(before["sessions_app.message"]) > 200
    assert len(before["memories.memory"]) > 10
    assert set(before["auth.group"]) == {"viewer", "editor", "auditors"}
    assert len(before["agents.apikey"]) == 2
    assert len(before["admin.logentry"]) == 1
    micro = {m["created_at"].microsecond for m in before["sessions_app.message"].values()}
    assert any(m % 1000 for m in micro), "the data must carry sub-millisecond timestamps"
    _assert_same_rows(before, after)


def _sqlite(tmp_path: Path, name: str) -> dict[str, str]:
    return {"SQLITE_PATH": str(tmp_path / f"{name}.sqlite3")}


@pytest.fixture
def postgres_databases() -> Iterator[Any]:
    """Makes fresh, empty PostgreSQL databases next to the suite's own; drops them afterwards."""
    url = os.environ.get("DATABASE_URL", "")
    config = dj_database_url.parse(url)
    made: list[str] = []
    admin = psycopg.connect(
        dbname="postgres",
        user=config["USER"],
        password=config["PASSWORD"] or None,
        host=config["HOST"],
        port=config["PORT"] or 5432,
        autocommit=True,
    )

    def make(suffix: str) -> dict[str, str]:
        name = f"{config['NAME']}_{suffix}"
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return {"DATABASE_URL": url.rsplit("/", 1)[0] + "/" + name}

    yield make
    for name in made:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
    admin.close()


def test_it_restores_sqlite_into_sqlite_with_every_field_equal(tmp_path: Path) -> None:
    _round_trip(_sqlite(tmp_path, "source"), _sqlite(tmp_path, "restored"), tmp_path)


@pytest.mark.parametrize("form", ["plain -o", "plain stdout", "xml"])
def test_it_restores_every_form_of_dumpdata_with_every_field_equal(
    tmp_path: Path, form: str
) -> None:
    _round_trip(_sqlite(tmp_path, "source"), _sqlite(tmp_path, "restored"), tmp_path, form=form)


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["plain -o", "plain stdout", "xml"])
def test_it_restores_every_form_of_dumpdata_into_postgres(
    tmp_path: Path, postgres_databases: Any, form: str
) -> None:
    _round_trip(postgres_databases("rt_src"), postgres_databases("rt_dst"), tmp_path, form=form)


def test_it_restores_the_same_backup_twice_without_duplicates(tmp_path: Path) -> None:
    _round_trip(_sqlite(tmp_path, "source"), _sqlite(tmp_path, "restored"), tmp_path, restores=2)


@pytest.mark.postgres
def test_it_restores_postgres_into_postgres_with_every_field_equal(
    tmp_path: Path, postgres_databases: Any
) -> None:
    _round_trip(postgres_databases("rt_src"), postgres_databases("rt_dst"), tmp_path)


@pytest.mark.postgres
def test_it_restores_sqlite_into_postgres_with_every_field_equal(
    tmp_path: Path, postgres_databases: Any
) -> None:
    _round_trip(_sqlite(tmp_path, "source"), postgres_databases("rt_from_sqlite"), tmp_path)


def test_it_keeps_microseconds_in_the_backup_file(tmp_path: Path) -> None:
    source = _sqlite(tmp_path, "source")
    _command(source, "migrate", "-v0", cwd=tmp_path)
    _manage(source, "-m", "tests.config.backup_rows", "edge-cases", cwd=ROOT)
    _command(source, *BACKUP, cwd=tmp_path)
    text = (tmp_path / "backup.jsonl").read_text()
    # Django's stock encoder would write .123Z here and lose the last three digits.
    assert '"created_at": "2026-11-03T13:37:42.123456Z"' in text
    assert '"contenttypes.contenttype"' not in text and '"auth.permission"' not in text


@pytest.mark.parametrize("form", ["plain -o", "xml"])
def test_it_keeps_microseconds_in_every_format(tmp_path: Path, form: str) -> None:
    source = _sqlite(tmp_path, "source")
    _command(source, "migrate", "-v0", cwd=tmp_path)
    _manage(source, "-m", "tests.config.backup_rows", "edge-cases", cwd=ROOT)
    backup, file_name = FORMS[form]
    _command(source, *backup, cwd=tmp_path)
    text = (tmp_path / file_name).read_text()
    assert "2026-11-03T13:37:42.123456" in text and "2026-11-03T13:37:42.123Z" not in text


def test_it_says_in_one_line_what_to_do_with_a_backup_that_does_not_fit(tmp_path: Path) -> None:
    source, target = _sqlite(tmp_path, "source"), _sqlite(tmp_path, "restored")
    _command(source, "migrate", "-v0", cwd=tmp_path)
    _manage(source, "-m", "tests.config.backup_rows", "edge-cases", cwd=ROOT)
    _command(source, "dumpdata", "-o", "backup.json", cwd=tmp_path)
    # Cut short: the sessions are gone, their messages still refer to them.
    rows = json.loads((tmp_path / "backup.json").read_text())
    kept = [row for row in rows if row["model"] != "sessions_app.session"]
    (tmp_path / "cut.json").write_text(json.dumps(kept))
    _command(target, "migrate", "-v0", cwd=tmp_path)
    env = {"PATH": os.environ.get("PATH", ""), "DEBUG": "1", "PYTHONPATH": str(ROOT), **target}
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "loaddata", "cut.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("CommandError: The backup could not be restored")
    assert "freshly migrated, empty database" in line
    assert "python manage.py migrate" in line
