"""The backup serializer: Django's JSONL output, byte for byte, without a query per row."""

from __future__ import annotations

from django.core import serializers
from django.core.serializers import jsonl

from sessions_app.models import Message
from tests.factories import AgentFactory, SessionFactory, conversation


def test_it_writes_what_django_writes(db: None) -> None:
    for agent in (AgentFactory(name="one"), AgentFactory(name="two")):
        conversation(SessionFactory(agent=agent), turns=3, failing=1)
    messages = Message.objects.order_by("pk")

    ours = serializers.serialize("jsonl", messages, use_natural_foreign_keys=True)
    django = jsonl.Serializer().serialize(messages, use_natural_foreign_keys=True)

    assert ours == django
    assert '"agent": ["one"]' in ours and '"agent": ["two"]' in ours


def test_it_looks_each_natural_key_up_once(db: None, django_assert_num_queries) -> None:
    agent = AgentFactory(name="busy")
    conversation(SessionFactory(agent=agent), turns=20)
    messages = Message.objects.order_by("pk")

    # 1: the messages; 2: agent "busy", once for all 40 rows (Django's own: once per row).
    with django_assert_num_queries(2):
        serializers.serialize("jsonl", messages, use_natural_foreign_keys=True)
