"""`python -m bench.loadtest` (`make loadtest`): locust against `make serve` on PostgreSQL.

Builds or reuses the benchmark's dataset (`--scale`, as `make bench`), makes an operator and API
keys, starts `make serve` on a free port, runs locust headless for `--time` seconds with
operators, API readers and API writers at once, optionally kills every database connection the
server holds `--kill-connections` times mid-run, stops the server, and then proves from the
database that every batch the server acknowledged is stored, once. The report (markdown, and
JSON with `--json`) gives throughput and p50/p95/p99 per route, the errors by status, and that
count. Exits 1 if an acknowledged message is missing or stored twice, or if any answer was a 500.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
OPERATOR = "loadtest@logdeck.test"
WRITE_AGENT = "loadtest-writer"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.loadtest", description=__doc__)
    parser.add_argument("--scale", default="10k", help="messages in the dataset: 10k, 100k, 1m")
    parser.add_argument("--users", type=int, default=30, help="simulated users at once")
    parser.add_argument("--spawn-rate", type=float, default=10, help="users started per second")
    parser.add_argument("--time", type=int, default=60, help="seconds of load")
    parser.add_argument(
        "--kill-connections",
        type=int,
        default=0,
        metavar="N",
        help="terminate every connection of the server's database N times, evenly mid-run",
    )
    parser.add_argument("--name", default="", help="a name for the output files")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    if args.users < 1 or args.time < 5 or args.kill_connections < 0:
        parser.error("--users must be at least 1, --time at least 5 s, kills at least 0.")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """The dataset, the actors and the sample ids the simulated users pick from."""
    import django

    django.setup()
    import psycopg
    from django.core.management import call_command
    from django.db import connection

    from agents.models import User
    from agents.services import agent_upsert, api_key_create
    from bench import dataset

    call_command("migrate", "--noinput", verbosity=0)
    messages = dataset.scale_messages(args.scale)
    with psycopg.connect(url, autocommit=True) as conn:
        if dataset.existing(conn, messages) is None:
            log(f"Building the dataset: {messages:,} messages ...")
            connection.close()
            dataset.build(conn, messages, log=log)
        else:
            log(f"Reusing the dataset of {messages:,} messages")
            dataset.vacuum(conn)
        facts_rows = {
            "agents": [r[0] for r in conn.execute(
                "SELECT id FROM agents_agent WHERE name <> %s ORDER BY id", [WRITE_AGENT])],
            "sessions": [str(r[0]) for r in conn.execute(
                "SELECT id FROM sessions_app_session WHERE name LIKE 'bench %%' "
                "ORDER BY random() LIMIT 500")],
            "error_groups": [list(r) for r in conn.execute(
                "SELECT tool_name, error_fingerprint FROM sessions_app_errorgroupday "
                "GROUP BY 1, 2 ORDER BY sum(failures) DESC LIMIT 50")],
        }  # fmt: skip

    password = secrets.token_urlsafe(18)
    user = User.objects.filter(email=OPERATOR).first()
    if user is None:
        user = User.objects.create_superuser(OPERATOR, password=password)
    else:
        user.set_password(password)
        user.is_active = user.is_staff = user.is_superuser = True
        user.save()
    user.api_keys.filter(name="loadtest").delete()
    agent_upsert(name=WRITE_AGENT, model="loadtest")
    facts = {
        **facts_rows,
        "operator": OPERATOR,
        "password": password,
        "read_key": api_key_create(user=user, scope="read", name="loadtest").secret,
        "write_key": api_key_create(user=user, scope="write", name="loadtest").secret,
        "write_agent": WRITE_AGENT,
    }
    connection.close()
    return facts


class Server:
    """`make serve` in its own process group, logging JSON lines to a file."""

    def __init__(self, log_path: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        env = {
            **os.environ,
            "LOG_FORMAT": "json",
            "PORT": str(port),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with log_path.open("w") as out:
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", "serve", f"PORT={port}"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = time.monotonic()
        while time.monotonic() - started < 300:
            if self.process.poll() is not None:
                raise SystemExit(f"make serve stopped:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit("make serve was not ready within 300 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def statuses(self) -> Counter[int]:
        counted: Counter[int] = Counter()
        for text in self.log_path.read_text().splitlines():
            if text.startswith("{"):
                line = json.loads(text)
                if line.get("logger") == "logdeck.request":
                    counted[line["status"]] += 1
        return counted

    def internal_errors(self) -> int:
        return self.log_path.read_text().count("Internal Server Error")


def kill_connections(url: str, at: list[float], started: float, done: list[dict]) -> None:
    """At each offset (seconds from `started`), terminate every backend of the database."""
    import psycopg

    database = url.rsplit("/", 1)[1].split("?", 1)[0]
    maintenance = url.rsplit("/", 1)[0] + "/postgres"
    for offset in at:
        time.sleep(max(0.0, started + offset - time.monotonic()))
        with psycopg.connect(maintenance, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend') AS t",
                [database],
            ).fetchone()[0]
        done.append({"at_s": round(time.monotonic() - started, 1), "connections": killed})
        log(f"  killed {killed} database connections at {done[-1]['at_s']} s")


def busy_processes() -> list[str]:
    """What else used the CPU (a snapshot mid-run): the machine is shared."""
    ps = subprocess.run(
        ["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, check=False
    )
    return [line.strip()[:90] for line in ps.stdout.splitlines()[1:11]]


def verify(url: str, acks: dict[str, Any], since: dt.datetime) -> dict[str, Any]:
    """Every acknowledged message stored, once, with its text; the session counters exact."""
    import psycopg

    acked = {
        (a["session"], a["first"] + i) for a in acks["acknowledged"] for i in range(a["count"])
    }
    with psycopg.connect(url) as conn:
        sessions = [str(r[0]) for r in conn.execute(
            "SELECT s.id FROM sessions_app_session s JOIN agents_agent a ON a.id = s.agent_id "
            "WHERE a.name = %s AND s.created_at >= %s", [WRITE_AGENT, since])]  # fmt: skip
        rows = conn.execute(
            "SELECT session_id::text, seq, text_content FROM sessions_app_message "
            "WHERE session_id = ANY(%s::uuid[])",
            [sessions],
        ).fetchall()
        counters = conn.execute(
            "SELECT s.id::text, s.message_count, count(m.id) FROM sessions_app_session s "
            "LEFT JOIN sessions_app_message m ON m.session_id = s.id "
            "WHERE s.id = ANY(%s::uuid[]) GROUP BY s.id, s.message_count",
            [sessions],
        ).fetchall()
        tool_calls = conn.execute(
            "SELECT count(*) FROM sessions_app_toolcall WHERE session_id = ANY(%s::uuid[])",
            [sessions],
        ).fetchone()[0]
    stored = Counter((session, seq) for session, seq, _ in rows)
    texts = Counter(text for _, _, text in rows)
    wrong_text = sum(1 for session, seq, text in rows if text != f"loadtest {session} {seq}")
    return {
        "writer_sessions": len(sessions),
        "acknowledged_batches": len(acks["acknowledged"]),
        "acknowledged_messages": len(acked),
        "batches_retried": sum(1 for a in acks["acknowledged"] if a["attempts"] > 1),
        "batches_given_up": len(acks["gave_up"]),
        "stored_messages": len(rows),
        "acknowledged_and_stored": len(acked & set(stored)),
        "missing": len(acked - set(stored)),
        "stored_twice": sum(n - 1 for n in stored.values() if n > 1)
        + sum(n - 1 for n in texts.values() if n > 1),
        "wrong_text": wrong_text,
        "stored_not_acknowledged": len(set(stored) - acked),
        "counter_mismatches": sum(1 for _, counted, real in counters if counted != real),
        "tool_calls_stored": tool_calls,
        "tool_calls_expected": sum(1 for _, seq, _ in rows if seq % 5 == 4),
    }


def routes(prefix: Path) -> list[dict[str, Any]]:
    with open(f"{prefix}_stats.csv") as stats:
        return [
            {
                "name": row["Name"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50": row["50%"],
                "p95": row["95%"],
                "p99": row["99%"],
            }
            for row in csv.DictReader(stats)
        ]


def failures(prefix: Path) -> list[dict[str, Any]]:
    with open(f"{prefix}_failures.csv") as found:
        return [
            {"name": row["Name"], "error": row["Error"], "count": int(row["Occurrences"])}
            for row in csv.DictReader(found)
        ]


def exceptions(prefix: Path) -> int:
    """Errors in the simulated users' own code (a bug here, not an answer of the server)."""
    with open(f"{prefix}_exceptions.csv") as found:
        return sum(int(row["Count"]) for row in csv.DictReader(found))


def report(result: dict[str, Any]) -> str:
    run, proof = result["run"], result["proof"]
    lines = [
        f"Load test: {run['users']} users for {run['seconds']} s against make serve "
        f"({run['dataset']} messages, PostgreSQL {run['postgres']}), "
        f"{run['cpus']} CPUs, load {run['load_before']} before and {run['load_after']} after"
        + (f", database connections killed at {run['kills']}" if run["kills"] else ""),
        "",
        "| route | requests | errors | req/s | p50 ms | p95 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["routes"]:
        name = f"**{row['name']}**" if row["name"] == "Aggregated" else row["name"]
        lines.append(
            f"| {name} | {row['requests']:,} | {row['failures']:,} | {row['rps']:.1f} | "
            f"{row['p50']} | {row['p95']} | {row['p99']} |"
        )
    statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(result["statuses"].items()))
    lines += [
        "",
        f"Server answers by status: {statuses}; 'Internal Server Error' in its log: "
        f"{result['internal_errors']}; exceptions in the simulated users: "
        f"{result['user_exceptions']}.",
    ]
    if result["failures"]:
        lines.append("Errors seen by the clients:")
        lines += [f"- {f['count']:,} x {f['name']}: {f['error']}" for f in result["failures"]]
    lines += [
        "",
        f"Acknowledged: {proof['acknowledged_messages']:,} messages in "
        f"{proof['acknowledged_batches']:,} batches over {proof['writer_sessions']} sessions "
        f"({proof['batches_retried']} batches needed a retry, {proof['batches_given_up']} given "
        f"up). Stored: {proof['stored_messages']:,}; acknowledged and stored "
        f"{proof['acknowledged_and_stored']:,}; missing {proof['missing']}; stored twice "
        f"{proof['stored_twice']}; wrong text {proof['wrong_text']}; stored but never "
        f"acknowledged {proof['stored_not_acknowledged']}; session counters off "
        f"{proof['counter_mismatches']}; tool calls {proof['tool_calls_stored']:,} of "
        f"{proof['tool_calls_expected']:,}.",
        "",
        "Busy processes mid-run: " + "; ".join(run["busy"]),
        "",
        f"Verdict: {result['verdict']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import configure_environment, ensure_database

    args = arguments(argv)
    url = configure_environment()
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    ensure_database(url)
    facts = prepare(args, url)

    OUT.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    name = args.name or f"loadtest-{args.scale}-{stamp}"
    prefix = OUT / name
    acks_path = OUT / f"{name}-acks.json"
    since = dt.datetime.now(dt.UTC)

    log("Starting make serve ...")
    server = Server(OUT / f"{name}-server.log", free_port())
    load_before = os.getloadavg()[0]
    kills: list[dict[str, Any]] = []
    busy: list[str] = []
    try:
        log(f"Locust: {args.users} users for {args.time} s against {server.url}")
        started = time.monotonic()
        offsets = [args.time * (i + 1) / (args.kill_connections + 1)
                   for i in range(args.kill_connections)]  # fmt: skip
        killer = threading.Thread(target=kill_connections, args=(url, offsets, started, kills))
        killer.start()
        sampler = threading.Timer(args.time / 2, lambda: busy.extend(busy_processes()))
        sampler.start()
        locust = subprocess.run(
            [
                str(Path(sys.executable).parent / "locust"),
                "-f", str(ROOT / "bench" / "loadtest" / "locustfile.py"),
                "--headless", "--users", str(args.users), "--spawn-rate", str(args.spawn_rate),
                "--run-time", f"{args.time}s", "--stop-timeout", "30", "--host", server.url,
                "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
            ],
            env={**os.environ, "LOADTEST_FACTS": json.dumps(facts),
                 "LOADTEST_ACKS": str(acks_path)},
            check=False,
        )  # fmt: skip
        killer.join()
        sampler.join()
        load_after = os.getloadavg()[0]
    finally:
        server.stop()
    if locust.returncode not in (0, 1):  # 1: some requests failed, which the report shows
        log(f"locust exited with {locust.returncode}")
        return 2

    acks = json.loads(acks_path.read_text())
    proof = verify(url, acks, since)
    statuses = server.statuses()
    internal = server.internal_errors()
    import psycopg

    with psycopg.connect(url) as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    ok = (
        proof["missing"] == 0
        and proof["stored_twice"] == 0
        and proof["wrong_text"] == 0
        and proof["counter_mismatches"] == 0
        and proof["tool_calls_stored"] == proof["tool_calls_expected"]
        and statuses.get(500, 0) == 0
        and internal == 0
        and exceptions(prefix) == 0
        and all(facts[sample] for sample in ("agents", "sessions", "error_groups"))
    )
    result = {
        "run": {
            "users": args.users,
            "seconds": args.time,
            "dataset": args.scale,
            "postgres": postgres,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": round(load_before, 2),
            "load_after": round(load_after, 2),
            "kills": kills,
            "busy": busy,
        },
        "routes": routes(prefix),
        "failures": failures(prefix),
        "statuses": dict(statuses),
        "internal_errors": internal,
        "user_exceptions": exceptions(prefix),
        "proof": proof,
        "verdict": "every acknowledged message stored once, no 500"
        if ok
        else "FAILED (see the counts above)",
    }
    text = report(result)
    print(text)
    (OUT / f"{name}.md").write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
