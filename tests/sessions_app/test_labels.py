"""The labels long pages show (`role_label`, `content_type_label`, `state_label`) read as
`get_<field>_display()` does, for every choice and for a value outside them."""

from __future__ import annotations

import pytest

from sessions_app.models import ContentType, Message, Role, ToolCall, ToolCallState


@pytest.mark.parametrize("role", [*Role, "narrator"])
def test_a_role_label_is_its_display(role: str) -> None:
    message = Message(role=role)
    assert message.role_label == message.get_role_display()


@pytest.mark.parametrize("content_type", [*ContentType, "video"])
def test_a_content_type_label_is_its_display(content_type: str) -> None:
    message = Message(content_type=content_type)
    assert message.content_type_label == message.get_content_type_display()


@pytest.mark.parametrize("state", [*ToolCallState, "paused"])
def test_a_state_label_is_its_display(state: str) -> None:
    call = ToolCall(state=state)
    assert call.state_label == call.get_state_display()
