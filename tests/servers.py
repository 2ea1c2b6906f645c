"""Logdeck servers in processes of their own, on a database of their own: for what only shows
across processes (throttles shared by workers, replicas, several instances)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def postgres_params() -> dict[str, object]:
    params = settings.DATABASES["default"]
    return {
        "host": params["HOST"] or "127.0.0.1",
        "port": params["PORT"] or 5432,
        "user": params["USER"],
        "password": params["PASSWORD"] or None,
    }


@contextmanager
def own_database(tmp: Path) -> Iterator[dict[str, str]]:
    """The environment for a fresh database: a SQLite file, or on PostgreSQL a new database
    beside the test database (dropped afterwards)."""
    if connection.vendor != "postgresql":
        yield {"SQLITE_PATH": str(tmp / "logdeck.sqlite3")}
        return
    params = postgres_params()
    name = f"logdeck_proc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**params, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgres://{params['user']}@{params['host']}:{params['port']}/{name}"
            yield {"DATABASE_URL": url}
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def base_env(**extra: str) -> dict[str, str]:
    """This environment without Redis or a database of its own, in development mode (the
    servers are runserver, serving static files themselves)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return {**env, "DEBUG": "1", **extra}


def manage(env: dict[str, str], *args: str) -> str:
    """Run a manage.py command; its output, or a failure with what it said."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    """A server (runserver, one process) with this environment; its base URL once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(f"{url}/accounts/login/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "the server stopped while starting"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def served(env: dict[str, str], *, workers: int = 2) -> Iterator[str]:
    """`make serve` (gunicorn, production settings) with this environment, on a port of its
    own; its base URL once /readyz answers 200. The first one collects the static files."""
    port = free_port()
    env = {k: v for k, v in env.items() if k != "DEBUG"}
    env.update(PORT=str(port), WEB_CONCURRENCY=str(workers), WEB_THREADS="2")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # make, gunicorn and its workers: one group to stop
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "make serve stopped while starting"
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
