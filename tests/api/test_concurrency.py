"""Concurrent batch appends to one session through real HTTP: nothing lost, seq gapless."""

from __future__ import annotations

import threading

import httpx
import pytest

from agents.models import User
from agents.services import api_key_create
from sessions_app.models import Message, Session, ToolCall
from tests.factories import AgentFactory, SessionFactory

WRITERS = 8
BATCHES = 5
PER_BATCH = 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_keeps_every_message_and_a_gapless_seq_under_concurrent_appends(live_server, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    operator = User.objects.create_user("runtime@logdeck.test", is_staff=True, is_superuser=True)
    secret = api_key_create(user=operator, scope="write").secret
    session = SessionFactory(agent=AgentFactory())
    url = f"{live_server.url}/api/v1/sessions/{session.pk}/messages"
    errors: list[str] = []
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=30) as client:
            start.wait()
            for b in range(BATCHES):
                batch = [
                    {
                        "role": "assistant",
                        "text_content": f"writer {n} batch {b} message {i}",
                        "tool_calls": [{"tool_name": "search", "call_id": f"w{n}b{b}m{i}"}],
                    }
                    for i in range(PER_BATCH)
                ]
                response = client.post(url, json={"messages": batch})
                if response.status_code != 201:
                    errors.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    total = WRITERS * BATCHES * PER_BATCH
    seqs = list(
        Message.objects.filter(session=session).order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(total))
    session = Session.objects.get(pk=session.pk)
    assert (session.message_count, session.tool_call_count) == (total, total)
    assert ToolCall.objects.filter(session=session).count() == total
    # Each batch landed in one piece: its three messages hold consecutive seqs.
    texts = dict(Message.objects.filter(session=session).values_list("seq", "text_content"))
    for start_seq in range(0, total, PER_BATCH):
        prefixes = {texts[start_seq + i].rsplit(" message", 1)[0] for i in range(PER_BATCH)}
        assert len(prefixes) == 1
