"""The JSON API: one NinjaAPI at /api/v1/, a Router per app."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="Logdeck API",
    version="1",
    description="Write and query what AI agents persist: users, agents, sessions, messages, "
    "tool calls, memories and checkpoints.",
    urls_namespace="api",
)
