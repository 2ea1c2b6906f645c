"""The demo data's catalogue: the agents, their tools with what they answer and how they fail,
the people who talk to them, and what they say."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DAYS = 30  # the overview charts show 30 days
FAILURE_RATE = 0.05
CHUNK_SESSIONS = 250
BATCH_ROWS = 2000

FIRST_NAMES = [
    "Ada",
    "Amir",
    "Ana",
    "Ben",
    "Chen",
    "Chloe",
    "Dara",
    "Diego",
    "Elif",
    "Emma",
    "Farah",
    "Felix",
    "Grace",
    "Hana",
    "Ines",
    "Ivan",
    "Jonas",
    "Kai",
    "Lea",
    "Leo",
    "Lina",
    "Luca",
    "Maya",
    "Mei",
    "Nia",
    "Noah",
    "Omar",
    "Priya",
    "Rosa",
    "Sam",
    "Sara",
    "Tariq",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Adams",
    "Baker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jansen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Weber",
    "Yilmaz",
    "Zhang",
]
PLATFORMS = ("web", "web", "web", "slack", "api", "api", "whatsapp", "cli", "voice")
LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP", "pt-BR")
USER_PLANS = ("free", "free", "pro", "team", "enterprise")


@dataclass(frozen=True)
class Tool:
    name: str
    make_input: Callable[[random.Random], dict[str, Any]]
    make_output: Callable[[random.Random], Any]
    # Error messages with ids and numbers inside: the error groups must fold them into one.
    errors: tuple[Callable[[random.Random], str], ...]
    needs_approval: bool = False


def _order(rng: random.Random) -> int:
    return rng.randint(10_000, 99_999)


def _hex(rng: random.Random, n: int = 12) -> str:
    return f"{rng.getrandbits(n * 4):0{n}x}"


COMMON_ERRORS: tuple[Callable[[random.Random], str], ...] = (
    lambda r: (
        f"Rate limit exceeded (429): retry after {r.randint(2, 60)}s, request id req_{_hex(r)}"
    ),
    lambda r: (
        f"Connection refused: db-replica-{r.randint(1, 4)}.internal:5432 "
        f"(attempt {r.randint(1, 3)} of 3)"
    ),
)

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            "lookup_order",
            lambda r: {"order_id": _order(r), "include": ["items", "shipping"]},
            lambda r: {
                "status": r.choice(["shipped", "processing", "delivered"]),
                "items": [
                    {"sku": f"SKU-{r.randint(100, 999)}", "qty": r.randint(1, 3)}
                    for _ in range(r.randint(1, 3))
                ],
                "eta": None if r.random() < 0.3 else f"2026-12-{r.randint(1, 28):02d}",
            },
            (
                lambda r: f"Order {_order(r)} not found",
                lambda r: (
                    f"Timeout after {r.choice([3000, 5000, 10000])}ms calling "
                    f"https://orders.internal/v2/orders/{_order(r)}"
                ),
            ),
        ),
        Tool(
            "issue_refund",
            lambda r: {"order_id": _order(r), "amount": round(r.uniform(5, 300), 2), "cur": "EUR"},
            lambda r: {"refund_id": f"re_{_hex(r, 10)}", "state": "accepted"},
            (lambda r: f"Refund of {r.randint(301, 2000)}.00 EUR exceeds the 300.00 EUR limit",),
            needs_approval=True,
        ),
        Tool(
            "search_kb",
            lambda r: {"query": r.choice(["return policy", "warranty", "shipping times"])},
            lambda r: {"hits": [{"id": f"kb-{r.randint(1, 400)}", "score": 0.9}]},
            (),
        ),
        Tool(
            "send_email",
            lambda r: {"to": "customer@example.com", "template": r.choice(["update", "welcome"])},
            lambda r: {"message_id": f"<{_hex(r, 16)}@mail.logdeck.test>"},
            (lambda r: f"SMTP 550: mailbox unavailable for user{r.randint(1, 999)}@example.com",),
            needs_approval=True,
        ),
        Tool(
            "read_file",
            lambda r: {
                "path": f"src/{r.choice(['app', 'lib', 'api'])}/{r.choice(['main', 'db'])}.py"
            },
            lambda r: {"lines": r.randint(20, 900), "truncated": r.random() < 0.2},
            (
                lambda r: (
                    f"FileNotFoundError: /workspace/src/module_{r.randint(1, 90)}/"
                    f"handler.py does not exist"
                ),
            ),
        ),
        Tool(
            "write_file",
            lambda r: {
                "path": f"src/app/feature_{r.randint(1, 40)}.py",
                "bytes": r.randint(1, 9000),
            },
            lambda r: {"written": True},
            (),
        ),
        Tool(
            "run_tests",
            lambda r: {"target": "tests/", "args": ["-x", "-q"]},
            lambda r: {"passed": r.randint(40, 400), "failed": 0, "seconds": r.uniform(2, 90)},
            (
                lambda r: (
                    f"{r.randint(1, 12)} tests failed, first: test_checkout_{r.randint(1, 50)} "
                    f"AssertionError: expected {r.randint(1, 9)} got {r.randint(10, 20)}"
                ),
            ),
        ),
        Tool(
            "shell",
            lambda r: {"cmd": r.choice(["git status", "make lint", "ls -la"])},
            lambda r: {"exit_code": 0, "stdout": "ok"},
            (
                lambda r: (
                    f"Command exited with status {r.randint(1, 127)} after {r.randint(1, 40)}s"
                ),
            ),
            needs_approval=True,
        ),
        Tool(
            "web_search",
            lambda r: {"q": r.choice(["battery recycling EU", "LLM evaluation", "heat pumps"])},
            lambda r: {"results": [f"https://example.org/a/{r.randint(1, 999)}" for _ in range(3)]},
            (),
        ),
        Tool(
            "fetch_url",
            lambda r: {"url": f"https://example.org/articles/{r.randint(1, 5000)}"},
            lambda r: {"status": 200, "chars": r.randint(900, 40000)},
            (
                lambda r: (
                    f"HTTP {r.choice([403, 404])} fetching "
                    f"https://example.org/articles/{r.randint(1, 5000)}"
                ),
            ),
        ),
        Tool(
            "summarize",
            lambda r: {"max_words": r.choice([100, 200, 400])},
            lambda r: {
                "summary": "Three findings, two open questions.",
                "words": r.randint(80, 400),
            },
            (),
        ),
        Tool(
            "search_flights",
            lambda r: {"from": r.choice(["BER", "LIS", "NRT"]), "to": r.choice(["JFK", "SFO"])},
            lambda r: {"offers": [{"price": r.randint(300, 1500), "stops": r.randint(0, 2)}]},
            (lambda r: f"Upstream GDS error code {r.randint(1000, 9999)}: no availability",),
        ),
        Tool(
            "book_hotel",
            lambda r: {"hotel_id": f"H{r.randint(1000, 9999)}", "nights": r.randint(1, 7)},
            lambda r: {"confirmation": f"CNF-{_hex(r, 8).upper()}"},
            (),
            needs_approval=True,
        ),
        Tool(
            "get_weather",
            lambda r: {"city": r.choice(["Berlin", "Lisbon", "Tokyo", "New York"])},
            lambda r: {"temp_c": r.randint(-5, 35), "sky": r.choice(["clear", "rain", "cloudy"])},
            (),
        ),
        Tool(
            "crm_lookup",
            lambda r: {"account": f"acct_{r.randint(1, 5000)}"},
            lambda r: {
                "tier": r.choice(["smb", "mid", "enterprise"]),
                "arr": r.randint(1, 900) * 1000,
            },
            (lambda r: f"CRM record acct_{r.randint(1, 5000)} is locked by another process",),
        ),
        Tool(
            "create_lead",
            lambda r: {
                "company": r.choice(["Acme", "Globex", "Initech"]),
                "score": r.randint(1, 99),
            },
            lambda r: {"lead_id": r.randint(100_000, 999_999)},
            (),
        ),
        Tool(
            "query_metrics",
            lambda r: {"metric": "p95_latency_ms", "window": "15m"},
            lambda r: {"value": r.uniform(80, 900), "unit": "ms"},
            (),
        ),
        Tool(
            "page_oncall",
            lambda r: {"severity": r.choice(["sev2", "sev3"])},
            lambda r: {"incident": f"INC-{r.randint(1000, 9999)}"},
            (),
            needs_approval=True,
        ),
    )
}


@dataclass(frozen=True)
class DemoAgent:
    name: str
    type: str
    model: str
    description: str
    system_prompt: str
    tools: tuple[str, ...]
    questions: tuple[str, ...]
    weight: int
    active: bool = True


AGENTS = (
    DemoAgent(
        "support-bot",
        "customer_support",
        "claude-sonnet-4-5",
        "Answers order and refund questions for the web shop.",
        "You are Logdeck Shop's support agent. Be brief, check the order before answering.",
        ("lookup_order", "issue_refund", "search_kb", "send_email"),
        (
            "Where is my order #{n}?",
            "I want a refund for order {n}, the item arrived broken.",
            "Can I change the shipping address of order {n}?",
            "What is your return policy for sale items?",
        ),
        weight=5,
    ),
    DemoAgent(
        "code-assistant",
        "coding",
        "gpt-5",
        "Pairs with developers on the monorepo: reads code, edits, runs the tests.",
        "You are a careful senior engineer. Run the tests before you say something works.",
        ("read_file", "write_file", "run_tests", "shell"),
        (
            "The checkout test {n} is flaky, can you look?",
            "Add a retry to the payment client (ticket LD-{n}).",
            "Why does `make lint` fail on main?",
        ),
        weight=4,
    ),
    DemoAgent(
        "research-agent",
        "research",
        "gemini-2.5-pro",
        "Searches the web and writes sourced summaries.",
        "You research questions and cite every source you use.",
        ("web_search", "fetch_url", "summarize"),
        (
            "Summarise the latest work on battery recycling in the EU.",
            "Compare three papers on LLM evaluation published since {n}.",
            "What do heat pump installers charge in 2026?",
        ),
        weight=3,
    ),
    DemoAgent(
        "travel-planner",
        "planner",
        "gpt-5-mini",
        "Plans trips: flights, hotels, weather.",
        "You plan trips within the traveller's budget and ask before booking anything.",
        ("search_flights", "book_hotel", "get_weather"),
        (
            "Find me a flight to New York under {n} EUR next month.",
            "Book a hotel near Shibuya for 3 nights.",
            "Will it rain in Lisbon this weekend?",
        ),
        weight=2,
    ),
    DemoAgent(
        "sales-assistant",
        "sales",
        "llama-3.3-70b",
        "Qualifies inbound leads and drafts follow-ups.",
        "You qualify leads politely; never promise discounts.",
        ("crm_lookup", "create_lead", "send_email"),
        (
            "New inbound lead from Globex, {n} seats, please qualify.",
            "Draft a follow-up to account acct_{n}.",
        ),
        weight=2,
    ),
    DemoAgent(
        "ops-watcher",
        "monitoring",
        "claude-haiku-4-5",
        "Watched latency and paged on-call. Retired in favour of the new alerting.",
        "You watch service health and page on-call only for real incidents.",
        ("query_metrics", "page_oncall"),
        ("p95 latency of the API is above {n}ms, investigate.",),
        weight=1,
        active=False,
    ),
)

FOLLOW_UPS = (
    "Thanks. And what about the other one?",
    "Can you double-check that?",
    "OK, please go ahead.",
    "That is not what I meant; try again.",
    "Great, one more thing.",
)

ANSWERS = (
    "Done. Here is what I found, with the details above.",
    "I checked it for you: everything is in order now.",
    "That did not work as planned; I have noted the error and suggested a next step.",
    "Here is a short summary and the sources I used.",
    "I need one more detail from you before I can continue.",
)
