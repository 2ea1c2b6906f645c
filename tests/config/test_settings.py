"""Settings come from the environment: each case starts Python afresh with exactly the
variables given, as a deployment would."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "SECRET_KEY": "k3y-" + "x7Qp9vLm2ZrT8wYc4NbHs6JdKf1GaE0uVoRi5PtMqWn3BjXh",
    "ALLOWED_HOSTS": "logdeck.example.com",
}


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def _setting(expression: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _python(
        f"import django; django.setup(); from django.conf import settings; print({expression})",
        **env,
    )


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _python(
        f"import runpy, sys; sys.argv = {['manage.py', *args]!r}; "
        "runpy.run_path('manage.py', run_name='__main__')",
        **env,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": PRODUCTION["SECRET_KEY"]}, "ALLOWED_HOSTS is not set"),
        ({"SECRET_KEY": PRODUCTION["SECRET_KEY"], "ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS is not"),
        ({"DEBUG": "banana"}, "DEBUG='banana' is not a boolean"),
        ({**PRODUCTION, "DATABASE_URL": "postgres://u@db:notaport/x"}, "DATABASE_URL is malformed"),
        ({**PRODUCTION, "DATABASE_URL": "not a url"}, "DATABASE_URL is malformed"),
        (
            {**PRODUCTION, "DATABASE_URL": "mysql://u@db/logdeck"},
            "must be a postgres:// or sqlite:/// URL",
        ),
        ({**PRODUCTION, "DATABASE_URL": "postgres://"}, "DATABASE_URL names no database"),
        (
            {**PRODUCTION, "DATABASE_URL": "postgres://u@db/x", "DATABASE_POOL_MAX": "lots"},
            "DATABASE_POOL_MAX='lots' is not an integer",
        ),
        ({**PRODUCTION, "SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE='maybe'"),
        ({**PRODUCTION, "LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is not a log level"),
    ],
)
def test_it_stops_with_a_clear_message_on_bad_settings(env, message):
    result = _setting("'started'", **env)

    assert result.returncode != 0
    assert "started" not in result.stdout
    assert "django.core.exceptions.ImproperlyConfigured: " in result.stderr
    assert message in result.stderr


def test_it_says_what_is_missing_in_one_line_from_manage_py():
    result = _manage("check")

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Logdeck cannot start: SECRET_KEY is not set. Set SECRET_KEY to a long random string, "
        "or DEBUG=1 for development."
    )


def test_it_starts_with_debug_alone_on_sqlite_and_local_memory():
    result = _setting(
        "settings.DEBUG, settings.DATABASES['default']['ENGINE'], "
        "settings.CACHES['default']['BACKEND'], settings.ALLOWED_HOSTS",
        DEBUG="1",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "True django.db.backends.sqlite3 django.core.cache.backends.locmem.LocMemCache "
        "['127.0.0.1', 'localhost', 'testserver']"
    )


def test_it_uses_postgres_with_a_pool_from_database_url():
    result = _setting(
        "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME'], "
        "settings.DATABASES['default']['OPTIONS']['pool']['max_size']",
        **PRODUCTION,
        DATABASE_URL="postgres://logdeck@db.internal:5432/logdeck",
        DATABASE_POOL_MAX="7",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.postgresql logdeck 7"


def test_it_takes_log_levels_in_any_case_as_gunicorn_does():
    result = _setting(
        "settings.LOGGING['root']['level'], settings.LOGGING['loggers']['logdeck.request']",
        **PRODUCTION,
        LOG_LEVEL="warning",
        REQUEST_LOG_LEVEL="Error",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "WARNING {'level': 'ERROR'}"


SQLITE_PRAGMAS = (
    "import django; django.setup(); from django.conf import settings; "
    "from django.db import connection; cursor = connection.cursor(); "
    "print(settings.DATABASES['default']['NAME']); "
    "print(cursor.execute('PRAGMA journal_mode').fetchone()[0]); "
    "print(cursor.execute('PRAGMA busy_timeout').fetchone()[0]); "
    "print(cursor.execute('PRAGMA foreign_keys').fetchone()[0])"
)


@pytest.mark.parametrize("how", ["absolute url", "relative url", "sqlite_path"])
def test_it_opens_sqlite_by_url_or_path_in_wal_mode_with_a_busy_timeout(tmp_path, how):
    path = tmp_path / "by url.sqlite3"
    env = {**PRODUCTION, "SQLITE_BUSY_TIMEOUT": "7"}
    if how == "absolute url":
        env["DATABASE_URL"] = f"sqlite:///{path}"  # sqlite:////tmp/...: four slashes
    elif how == "relative url":
        env["DATABASE_URL"] = f"sqlite:///{os.path.relpath(path, ROOT)}"
    else:
        env["SQLITE_PATH"] = str(path)

    result = _python(SQLITE_PRAGMAS, **env)

    assert result.returncode == 0, result.stderr
    name, journal, timeout, foreign_keys = result.stdout.split("\n")[:4]
    assert Path(ROOT, name).resolve() == path.resolve()
    assert (journal, timeout, foreign_keys) == ("wal", "7000", "1")
    assert path.exists()


def test_it_migrates_a_sqlite_database_named_by_url(tmp_path):
    path = tmp_path / "logdeck.sqlite3"
    result = _manage("migrate", "-v0", **PRODUCTION, DATABASE_URL=f"sqlite:///{path}")

    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 10


def test_it_passes_check_deploy_with_production_values():
    # With email set up nothing is silenced; without it, only the warning that no mailer is set
    # (on purpose: password reset then says it is off).
    with_email = {**PRODUCTION, "EMAIL_HOST": "smtp.example.com"}
    for env, silenced in ((with_email, 0), (PRODUCTION, 1)):
        result = _manage("check", "--deploy", "--fail-level", "WARNING", **env)

        assert result.returncode == 0, result.stdout + result.stderr
        assert f"System check identified no issues ({silenced} silenced)." in result.stdout


def test_it_fails_check_deploy_with_a_weak_secret_key():
    # The check can fail: the same run with a short key is refused.
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, "SECRET_KEY": "short"}
    )

    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout


def test_it_caches_in_redis_when_redis_url_is_set(redis_url):
    code = (
        "import django, uuid; django.setup();"
        "from django.core.cache import cache, caches;"
        "key = 'settings-test-' + uuid.uuid4().hex;"
        "cache.set(key, {'a': [1, None]}, 30);"
        "print(type(caches['default']).__name__, cache.get(key), cache.make_key(key));"
        "cache.delete(key)"
    )

    result = _python(code, **PRODUCTION, REDIS_URL=redis_url, CACHE_PREFIX="logdeck-settings")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "FallbackRedisCache {'a': [1, None]} logdeck-settings:1:settings-test-"
    )


@pytest.mark.django_db
def test_it_serves_static_files_with_whitenoise(settings, tmp_path):
    # As in production: DEBUG off, hashed and compressed files collected into STATIC_ROOT.
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", verbosity=0)
    url = staticfiles_storage.url("admin/css/base.css")
    assert url != "/static/admin/css/base.css", "the manifest storage names files by content"

    response = Client().get(url, headers={"accept-encoding": "gzip"})

    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    body = b"".join(response.streaming_content)
    assert body[:2] == b"\x1f\x8b"  # gzip
