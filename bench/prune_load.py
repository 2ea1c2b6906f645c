"""Retention under load: `manage.py prune` removes the dataset's oldest month while API writers
keep appending, on a copy of the benchmark's database (made from it as a template).

    python -m bench.prune_load --scale 10m [--writers 4]

Reported: prune's time, the WAL it wrote, the longest any of its transactions stayed open (from
`pg_stat_activity`, sampled every 20 ms, so a lock it took is held at most that long), and each
writer's appends during it: how many, p50, p99 and the longest wait. Run `make bench SCALE=...`
first: it builds the dataset this copies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

from bench.__main__ import DEFAULT_DATABASE_URL, maintenance_url

ROOT = Path(__file__).resolve().parents[1]


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stdout + done.stderr)
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prune_load")
    parser.add_argument("--scale", default="10k")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=10, help="messages per append")
    args = parser.parse_args()
    source = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    copy = source.rsplit("/", 1)[0] + "/logdeck_bench_prune"
    with psycopg.connect(maintenance_url(source), autocommit=True) as admin:
        name = source.rsplit("/", 1)[1]
        admin.execute("DROP DATABASE IF EXISTS logdeck_bench_prune WITH (FORCE)")
        started = time.perf_counter()
        admin.execute(f'CREATE DATABASE logdeck_bench_prune TEMPLATE "{name}"')
        print(f"Copied the {args.scale} dataset in {time.perf_counter() - started:.1f} s")
    try:
        return measure(copy, args)
    finally:
        with psycopg.connect(maintenance_url(source), autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS logdeck_bench_prune WITH (FORCE)")


def measure(url: str, args: argparse.Namespace) -> int:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "logdeck-benchmark-only-not-a-secret",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "TIME_ZONE": "UTC",
    }
    env.pop("REDIS_URL", None)
    db = psycopg.connect(url, autocommit=True)
    oldest = db.execute("SELECT min(finished_at) FROM sessions_app_session").fetchone()[0]
    cutoff = oldest + dt.timedelta(days=30)
    # prune counts in whole days, at least one (a small dataset's sessions may all be recent).
    days = max(1, (dt.datetime.now(dt.UTC) - cutoff).days)
    doomed = db.execute(
        "SELECT count(*), coalesce(sum(message_count), 0) FROM sessions_app_session "
        "WHERE finished_at < now() - make_interval(days => %s)",
        [days],
    ).fetchone()
    total = db.execute("SELECT count(*) FROM sessions_app_message").fetchone()[0]
    print(f"{total:,} messages; prune --older-than {days}d takes {doomed[0]:,} sessions, "
          f"{doomed[1]:,} messages")  # fmt: skip
    secret = _manage(
        env,
        "shell",
        "-c",
        "from agents.models import User\n"
        "from agents.services import api_key_create\n"
        "u = User.objects.filter(email='prune@logdeck.test').first() or "
        "User.objects.create_superuser('prune@logdeck.test')\n"
        "print(api_key_create(user=u, scope='write').secret)",
    ).split()[-1]
    port = 8765
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/agents", headers=headers, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        return _run(db, env, base, headers, days, args)
    finally:
        server.terminate()
        server.wait(timeout=10)
        db.close()


def _run(db, env, base, headers, days, args) -> int:
    stop = threading.Event()
    pruning = threading.Event()
    waits: list[list[float]] = [[] for _ in range(args.writers)]
    errors: list[str] = []
    agent = httpx.get(f"{base}/agents", headers=headers).json()["items"][0]["name"]

    def writer(n: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            session = client.post("/sessions", json={"agent": agent}).json()["id"]
            while not stop.is_set():
                batch = [{"role": "user", "text_content": f"w{n}"}] * args.batch
                started = time.perf_counter()
                answer = client.post(f"/sessions/{session}/messages", json={"messages": batch})
                took = time.perf_counter() - started
                if answer.status_code != 201:
                    errors.append(f"{answer.status_code} {answer.text[:200]}")
                if pruning.is_set():
                    waits[n].append(took)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.writers)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    wal_before = db.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    longest_xact = 0.0
    pruning.set()
    started = time.perf_counter()
    prune = subprocess.Popen(
        [sys.executable, "manage.py", "prune", "--older-than", f"{days}d"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while prune.poll() is None:
        row = db.execute(
            "SELECT max(extract(epoch FROM now() - xact_start)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query ILIKE '%%DELETE%%' "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        ).fetchone()[0]
        longest_xact = max(longest_xact, float(row or 0))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    pruning.clear()
    wal = db.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [wal_before]).fetchone()[0]
    stop.set()
    for thread in threads:
        thread.join()
    said = (prune.stdout.read() or "").strip().splitlines()
    all_waits = sorted(w for ws in waits for w in ws)
    print(f"prune: {seconds:.1f} s, exit {prune.returncode}: {said[-1] if said else ''}")
    print(f"WAL written during prune (writers included): {int(wal) / 2**20:,.0f} MiB")
    print(f"longest open DELETE transaction seen: {longest_xact * 1000:.0f} ms")
    if all_waits:
        p99 = all_waits[min(len(all_waits) - 1, int(len(all_waits) * 0.99))]
        print(
            f"appends during prune: {len(all_waits):,} by {args.writers} writers; "
            f"p50 {statistics.median(all_waits) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"longest {all_waits[-1] * 1000:.0f} ms"
        )
    print(f"append errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
    return 0 if prune.returncode == 0 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
