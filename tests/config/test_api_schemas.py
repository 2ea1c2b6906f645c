"""The request body schemas: validated once, unknown fields refused at every depth."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import AfterValidator, ValidationError

from config.api_schemas import InputSchema


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
