"""gunicorn's settings for `make serve`, from the environment (see README, "Deploy").

Threaded workers (gthread): a request mostly waits on PostgreSQL, so a few threads per process
serve more than extra processes would, in less memory. Each worker process opens its own
connection pool after the fork (no preload), so no connection is shared across processes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def env_int(name: str, default: int) -> int:
    # As config.settings reads numbers; that module is not imported here, so that the workers
    # read their settings after the fork, with the environment set below.
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not an integer.") from None


_cores = os.cpu_count() or 1

bind = f"{os.environ.get('HOST') or '127.0.0.1'}:{env_int('PORT', 8000)}"
worker_class = "gthread"
# Two processes per core (plus one), each with a few threads, capped so that workers x threads
# stays under the pool sizes PostgreSQL's default max_connections (100) can give.
workers = env_int("WEB_CONCURRENCY", min(2 * _cores + 1, 8))
threads = env_int("WEB_THREADS", 4)
# Each thread holds at most one connection: a worker opens that many when it starts, so the first
# requests do not wait for the pool to grow one connection at a time.
os.environ.setdefault(
    "DATABASE_POOL_MIN", str(max(1, min(threads, env_int("DATABASE_POOL_MAX", 20))))
)
timeout = env_int("WEB_TIMEOUT", 30)
graceful_timeout = env_int("WEB_GRACEFUL_TIMEOUT", 30)
keepalive = env_int("WEB_KEEPALIVE", 5)
# Logdeck writes one structured line per request itself (config/request_log.py).
accesslog = None
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "warning").lower()
# X-Forwarded-* are believed only from these addresses (the TLS proxy in front).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"
proc_name = "logdeck"

# Prometheus counters of every worker land in one folder, so /metrics sums them whichever
# worker answers; a fresh folder per server start, removed when it stops.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="logdeck-metrics-")
    _own_metrics_dir = True
else:
    _own_metrics_dir = False


def on_starting(server: Any) -> None:
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
