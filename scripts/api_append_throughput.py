"""Batch-append throughput through the whole HTTP stack: messages stored per second.

Start a server, create a write key, then:

    python scripts/api_append_throughput.py --url http://127.0.0.1:8000 --key "$KEY" \
        --writers 4 --batches 50 --batch-size 100

Each writer appends its batches to its own session (and with --one-session, all to the same one,
which serialises on the session lock). Every other message carries a tool call.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid

import httpx


def batch(writer: int, number: int, size: int) -> list[dict]:
    messages = []
    for i in range(size):
        message = {
            "role": "user" if i % 2 == 0 else "assistant",
            "content_type": "text" if i % 2 == 0 else "tool_use",
            "text_content": f"writer {writer} batch {number} message {i}: " + "lorem ipsum " * 15,
        }
        if i % 2:
            message["tool_calls"] = [
                {
                    "tool_name": "lookup_order",
                    "call_id": f"w{writer}-b{number}-m{i}",
                    "input": {"order": number * 1000 + i},
                    "output": {"status": "shipped"},
                }
            ]
        messages.append(message)
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--one-session", action="store_true")
    args = parser.parse_args()

    headers = {"Authorization": f"Bearer {args.key}"}
    api = f"{args.url}/api/v1"
    with httpx.Client(headers=headers, timeout=120) as client:
        agent = f"throughput-{uuid.uuid4().hex[:8]}"
        client.post(f"{api}/agents", json={"name": agent}).raise_for_status()
        count = 1 if args.one_session else args.writers
        sessions = [
            client.post(f"{api}/sessions", json={"agent": agent}).raise_for_status().json()["id"]
            for _ in range(count)
        ]

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(args.writers + 1)

    def writer(n: int) -> None:
        session = sessions[0 if args.one_session else n]
        with httpx.Client(headers=headers, timeout=120) as client:
            barrier.wait()
            for b in range(args.batches):
                body = {"messages": batch(n, b, args.batch_size)}
                started = time.perf_counter()
                response = client.post(f"{api}/sessions/{session}/messages", json=body)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 201:
                        failures.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(args.writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started

    messages = args.writers * args.batches * args.batch_size
    latencies.sort()
    print(
        f"{messages} messages ({messages // 2} tool calls) in {wall:.2f}s: "
        f"{messages / wall:,.0f} messages/s; {args.writers} writers, "
        f"batches of {args.batch_size}, {'one session' if args.one_session else 'a session each'}"
    )
    print(
        f"batch latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms"
    )
    if failures:
        print(f"{len(failures)} batches failed, first: {failures[0]}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
