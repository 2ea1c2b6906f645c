"""The request body schemas: validated once, unknown fields refused at every depth. The response
schemas: a dict row validated as it is, a model instance through its resolvers."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from ninja.schema import DjangoGetter
from pydantic import AfterValidator, ValidationError

from config.api_schemas import InputSchema, OutputSchema


def _recorder(seen: list[Any]) -> AfterValidator:
    def record(value: Any) -> Any:
        seen.append(value)
        return value

    return AfterValidator(record)


def test_it_validates_each_nested_value_once():
    seen: list[Any] = []

    class Call(InputSchema):
        name: Annotated[str, _recorder(seen)]

    class Message(InputSchema):
        calls: list[Call] = []

    class Batch(InputSchema):
        messages: list[Message]

    body = {"messages": [{"calls": [{"name": "a"}, {"name": "b"}]}, {"calls": [{"name": "c"}]}]}
    batch = Batch.model_validate(body)
    # Ninja's own Schema ran the validator of a value this deep eight times over.
    assert seen == ["a", "b", "c"]
    assert [c.name for m in batch.messages for c in m.calls] == ["a", "b", "c"]


def test_it_refuses_an_unknown_field_deep_in_a_body():
    class Call(InputSchema):
        name: str

    class Batch(InputSchema):
        calls: list[Call]

    with pytest.raises(ValidationError) as caught:
        Batch.model_validate({"calls": [{"name": "a"}, {"name": "b", "nmae": "typo"}]})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("calls", 1, "nmae"), "extra_forbidden")
    ]


class Row(OutputSchema):
    id: int
    session: str

    @staticmethod
    def resolve_session(obj: Any) -> str:
        return f"session {obj.session_id}"


class RowPage(OutputSchema):
    items: list[Row]


def test_it_validates_dict_rows_without_ninjas_getter(monkeypatch):
    def refuse(getter: DjangoGetter, key: str) -> Any:
        raise AssertionError(f"{key} was read through a DjangoGetter")

    monkeypatch.setattr(DjangoGetter, "__getattr__", refuse)
    page = RowPage.model_validate({"items": [{"id": 1, "session": "a"}, {"id": 2, "session": "b"}]})
    # A dict is the row already shaped: the resolver is for model instances.
    assert page.model_dump() == {"items": [{"id": 1, "session": "a"}, {"id": 2, "session": "b"}]}


def test_it_reads_an_object_row_through_its_resolvers():
    class Instance:
        id = 7
        session_id = "x"

    page = RowPage.model_validate({"items": [Instance()]})
    assert page.model_dump() == {"items": [{"id": 7, "session": "session x"}]}
    with pytest.raises(ValidationError):
        RowPage.model_validate({"items": [{"id": 7}]})
