"""The client against a live server: pytest-django's `live_server` on the test database (SQLite
or PostgreSQL, as the suite runs), reached over real HTTP with a write key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agents.models import User
from agents.services import api_key_create


@dataclass(frozen=True)
class LiveApi:
    url: str
    key: str


@pytest.fixture
def live_api(transactional_db: None, live_server, superuser: User) -> LiveApi:
    """The live server's address and a write key of a superuser (a flush between live tests
    empties the groups the migrations made, so an editor's group would be gone)."""
    return LiveApi(url=live_server.url, key=api_key_create(user=superuser, scope="write").secret)


@pytest.fixture
def logdeck(live_api: LiveApi) -> Iterator[object]:
    from logdeck_client import Logdeck

    with Logdeck(live_api.url, live_api.key) as client:
        yield client
