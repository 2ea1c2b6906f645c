"""Admin for sessions, messages, tool calls and checkpoints: tables of millions of rows.

Writes go through sessions_app.services, so the session counters stay exact and `seq` gapless.
A session links to its messages, tool calls and checkpoints as filtered changelists; there are no
inlines, whose size would grow with the session.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.db.models.functions import Substr
from django.http import HttpRequest
from django.utils.html import format_html

from agents.models import Agent, User
from config.admin_bigtable import BigTableAdmin, change_url, changelist_link
from config.keyset import INT64_MAX
from memories.models import Memory
from sessions_app.models import Checkpoint, Message, Session, ToolCall
from sessions_app.selectors import message_text_matches
from sessions_app.services import (
    TOOL_CALL_EDITABLE,
    MessageIn,
    ToolCallIn,
    checkpoint_save,
    message_append,
    messages_delete,
    session_delete,
    session_start,
    session_update,
    sessions_finish,
    tool_call_add,
    tool_call_update,
    tool_calls_delete,
)

# The related agent's and user's large columns are never needed to show their names in a list.
RELATED_DEFERRED = ("agent__config", "agent__system_prompt", "agent__description")
PREVIEW_CHARS = 120


def _session_link(obj: Message | ToolCall | Checkpoint) -> str:
    url = change_url(Session, obj.session_id)
    return format_html('<a href="{}">{}</a>', url, str(obj.session_id)[:8])


def owner_search(term: str) -> Q:
    """One search term as indexed lookups: a UUID is the primary key, anything else the exact
    email of a user or the exact name of an agent. Their ids are looked up first (two index
    probes), so the page filters on literal FK values that its composite indexes serve;
    PostgreSQL cannot use those indexes under an OR of subqueries and would scan every row."""
    try:
        return Q(pk=uuid.UUID(term))
    except ValueError:
        pass
    email = User.objects.normalize_email(term)
    user_ids = list(User.objects.filter(email=email).order_by().values_list("pk", flat=True))
    agent_ids = list(Agent.objects.filter(name=term).order_by().values_list("pk", flat=True))
    if not user_ids and not agent_ids:
        return Q(pk__in=[])
    return Q(user_id__in=user_ids) | Q(agent_id__in=agent_ids)


def _filtered_by_session(request: HttpRequest) -> bool:
    return bool(request.GET.get("session") or request.GET.get("session__id__exact"))


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("finished", "Finished")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> QuerySet[Session]:
        # The active side is served by the partial index session_active_idx.
        if self.value() == "active":
            return queryset.active()
        if self.value() == "finished":
            return queryset.finished()
        return queryset


class HasErrorsFilter(admin.SimpleListFilter):
    title = "errors"
    parameter_name = "has_errors"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "With errors"), ("0", "Without errors")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> QuerySet[Session]:
        if self.value() == "1":
            return queryset.with_errors()
        if self.value() == "0":
            return queryset.filter(error_count=0)
        return queryset


@admin.register(Session)
class SessionAdmin(BigTableAdmin):
    list_display = (
        "__str__",
        "agent",
        "user",
        "platform",
        "created_at",
        "last_activity_at",
        "finished_at",
        "message_count",
        "tool_call_count",
        "error_count",
    )
    list_select_related = ("agent", "user")
    list_filter = (
        StatusFilter,
        HasErrorsFilter,
        "agent",  # agents are few: their select is small whatever the sessions
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("id",)  # see get_search_results
    search_help_text = (
        "A session id, a user's exact email, an agent's exact name, or an external key."
    )
    sortable_by = ("created_at", "message_count", "error_count")  # each has its own index
    changelist_deferred_fields = (
        "metadata",
        "user__user_data",
        "user__password",
        *RELATED_DEFERRED,
    )
    raw_id_fields = ("agent", "user")
    actions = ("finish",)
    delete_cascades = (
        (Message, "session"),
        (ToolCall, "session"),
        (Checkpoint, "session"),
        (Memory, "session"),
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Session], search_term: str
    ) -> tuple[QuerySet[Session], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # A framework's thread or session id: few sessions share one (one per agent), found by
        # the key's unique index; their ids keep the page on its composite indexes.
        keyed = list(
            Session.objects.filter(external_key=term).order_by().values_list("pk", flat=True)[:100]
        )
        return queryset.filter(owner_search(term) | Q(pk__in=keyed)), False

    def get_fields(self, request: HttpRequest, obj: Session | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("agent", "user", "name", "platform", "metadata")
        return (
            "id",
            "agent",
            "user",
            "name",
            "platform",
            "external_key",
            "metadata",
            "records",
            "created_at",
            "updated_at",
            "last_activity_at",
            "finished_at",
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: Session | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        # The agent is copied onto every message and tool call, so it never changes afterwards;
        # the external key is the framework's id, which its client keeps using.
        return (
            "id",
            "agent",
            "external_key",
            "records",
            "created_at",
            "updated_at",
            "last_activity_at",
            "finished_at",
        )

    @admin.display(description="Records")
    def records(self, session: Session) -> str:
        # Counts from the session's own counters: no query, whatever the session's size.
        return format_html(
            "{} · {} · {} · {}",
            changelist_link(Message, f"{session.message_count:,} messages", session=session.pk),
            changelist_link(
                ToolCall,
                f"{session.tool_call_count:,} tool calls ({session.error_count:,} failed)",
                session=session.pk,
            ),
            changelist_link(Checkpoint, "checkpoints", session=session.pk),
            changelist_link(Memory, "memories", session=session.pk),
        )

    @admin.action(description="Finish selected sessions", permissions=["change"])
    def finish(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        count = sessions_finish(sessions=queryset)
        self.message_user(request, f"{count} session(s) finished.", messages.SUCCESS)

    def save_model(
        self, request: HttpRequest, obj: Session, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            session_update(
                session=Session.objects.get(pk=obj.pk),
                name=data["name"],
                platform=data["platform"],
                metadata=data["metadata"],
                user=data["user"],
            )
            return
        session = session_start(
            agent=data["agent"],
            user=data["user"],
            name=data["name"],
            platform=data["platform"],
            metadata=data["metadata"],
        )
        obj.pk = session.pk
        obj.created_at = session.created_at

    def delete_model(self, request: HttpRequest, obj: Session) -> None:
        session_delete(session_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        for session_id in queryset.values_list("pk", flat=True):
            session_delete(session_id=session_id)


class MessageForm(forms.ModelForm):
    class Meta:
        model = Message
        fields = (
            "session",
            "role",
            "content_type",
            "text_content",
            "media_url",
            "model",
            "input_tokens",
            "output_tokens",
            "raw",
            "created_at",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        session = data.get("session")
        if self.instance.pk is None and session is not None and session.finished_at is not None:
            raise forms.ValidationError("The session is finished; no messages can be appended.")
        return data


@admin.register(Message)
class MessageAdmin(BigTableAdmin):
    form = MessageForm
    list_display = (
        "id",
        "session_link",
        "seq",
        "role",
        "content_type",
        "text_preview",
        "agent",
        "created_at",
    )
    list_select_related = ("agent",)
    list_filter = ("role", "content_type", "agent", ("created_at", admin.DateFieldListFilter))
    search_fields = ("text_content",)  # see get_search_results
    search_help_text = (
        "Words of the message text (full-text on PostgreSQL), a message id or a session id."
    )
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    changelist_deferred_fields = ("raw", "text_content", *RELATED_DEFERRED)
    raw_id_fields = ("session",)
    delete_cascades = ((ToolCall, "message"),)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return (
            super()
            .get_queryset(request)
            .annotate(_preview=Substr("text_content", 1, PREVIEW_CHARS))
        )

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        # One session's messages read as a transcript, by the (session, seq) unique index.
        return ("session_id", "seq") if _filtered_by_session(request) else self.ordering

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(session_id=uuid.UUID(term)), False
        except ValueError:
            pass
        condition = message_text_matches(term)
        # ASCII digits only ("²" is a digit to str.isdigit, not to int()), and within a bigint.
        if term.isascii() and term.isdigit() and len(term) <= 19 and int(term) <= INT64_MAX:
            condition |= Q(pk=int(term))
        return queryset.filter(condition), False

    def get_fields(self, request: HttpRequest, obj: Message | None = None) -> tuple[str, ...]:
        content = (
            "role",
            "content_type",
            "text_content",
            "media_url",
            "model",
            "input_tokens",
            "output_tokens",
            "raw",
            "created_at",
        )
        if obj is None:
            return ("session", *content)
        return ("session", "agent", "seq", "tool_calls_link", *content)

    def get_readonly_fields(
        self, request: HttpRequest, obj: Message | None = None
    ) -> tuple[str, ...]:
        # Position and owner are kept by message_append; a change would break seq or counters.
        return () if obj is None else ("session", "agent", "seq", "tool_calls_link", "created_at")

    @admin.display(description="Session", ordering="session")
    def session_link(self, message: Message) -> str:
        return _session_link(message)

    @admin.display(description="Text")
    def text_preview(self, message: Message) -> str:
        return getattr(message, "_preview", "")

    @admin.display(description="Tool calls")
    def tool_calls_link(self, message: Message) -> str:
        return changelist_link(ToolCall, "Tool calls of this message", message=message.pk)

    def save_model(
        self, request: HttpRequest, obj: Message, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        result = message_append(
            session_id=data["session"].pk,
            messages=[
                MessageIn(
                    role=data["role"],
                    content_type=data["content_type"],
                    text_content=data["text_content"],
                    media_url=data["media_url"],
                    model=data["model"],
                    input_tokens=data["input_tokens"],
                    output_tokens=data["output_tokens"],
                    raw=data["raw"],
                    created_at=data["created_at"],
                )
            ],
        )
        stored = result.messages[0]
        obj.pk, obj.seq, obj.agent_id = stored.pk, stored.seq, stored.agent_id

    def delete_model(self, request: HttpRequest, obj: Message) -> None:
        messages_delete(messages=Message.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        messages_delete(messages=queryset)


class ToolCallForm(forms.ModelForm):
    class Meta:
        model = ToolCall
        fields = ("session", "message", *TOOL_CALL_EDITABLE, "created_at")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        session = data.get("session") if self.instance.pk is None else self.instance.session
        message = data.get("message")
        if session is not None and message is not None and message.session_id != session.pk:
            self.add_error("message", "This message belongs to another session.")
        call_id = data.get("call_id")
        if session is not None and call_id:
            taken = ToolCall.objects.filter(session=session, call_id=call_id)
            if self.instance.pk is not None:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("call_id", "This call_id is already used in this session.")
        return data


@admin.register(ToolCall)
class ToolCallAdmin(BigTableAdmin):
    form = ToolCallForm
    list_display = (
        "id",
        "tool_name",
        "state",
        "is_error",
        "error_preview",
        "session_link",
        "message_id",
        "agent",
        "duration_ms",
        "created_at",
    )
    list_select_related = ("agent",)
    # is_error=1 is served by the partial index of failures.
    list_filter = ("state", "is_error", "agent", ("created_at", admin.DateFieldListFilter))
    search_fields = ("id__exact", "tool_name__exact", "session__id__exact")
    search_help_text = "A tool call id, an exact tool name, or a session id."
    sortable_by = ("created_at",)
    changelist_deferred_fields = (
        "input",
        "output",
        "approval",
        "error_message",
        *RELATED_DEFERRED,
    )
    raw_id_fields = ("session", "message")
    delete_cascades = ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[ToolCall]:
        return (
            super()
            .get_queryset(request)
            .annotate(_preview=Substr("error_message", 1, PREVIEW_CHARS))
        )

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        # One session's calls in transcript order, by the (session, message) index.
        if _filtered_by_session(request):
            return ("session_id", "message_id", "id")
        return ("-created_at", "-id")

    def get_fields(self, request: HttpRequest, obj: ToolCall | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("session", "message", *TOOL_CALL_EDITABLE, "created_at")
        return (
            "session",
            "agent",
            "message",
            *TOOL_CALL_EDITABLE,
            "error_fingerprint",
            "created_at",
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: ToolCall | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("session", "agent", "message", "error_fingerprint", "created_at")

    @admin.display(description="Session")
    def session_link(self, call: ToolCall) -> str:
        return _session_link(call)

    @admin.display(description="Error")
    def error_preview(self, call: ToolCall) -> str:
        return getattr(call, "_preview", "")

    def save_model(
        self, request: HttpRequest, obj: ToolCall, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            changed = {name: data[name] for name in form.changed_data if name in TOOL_CALL_EDITABLE}
            stored = tool_call_update(tool_call_id=obj.pk, **changed)
            obj.is_error, obj.error_fingerprint = stored.is_error, stored.error_fingerprint
            return
        message = data["message"]
        stored = tool_call_add(
            session_id=data["session"].pk,
            message_id=message.pk if message else None,
            call=ToolCallIn(**{name: data[name] for name in (*TOOL_CALL_EDITABLE, "created_at")}),
        )
        obj.pk, obj.agent_id = stored.pk, stored.agent_id

    def delete_model(self, request: HttpRequest, obj: ToolCall) -> None:
        tool_calls_delete(tool_calls=ToolCall.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ToolCall]) -> None:
        tool_calls_delete(tool_calls=queryset)


THREAD_CHECKPOINT_FIELDS = (
    "checkpoint_ns",
    "checkpoint_id",
    "parent_checkpoint_id",
    "metadata",
    "state_size",
)


@admin.register(Checkpoint)
class CheckpointAdmin(BigTableAdmin):
    list_display = ("id", "session_link", "type", "checkpoint_id", "created_at")
    search_fields = ("id__exact", "session__id__exact")
    search_help_text = "A checkpoint id or a session id."
    sortable_by = ()
    changelist_deferred_fields = ("data", "metadata", "state")
    raw_id_fields = ("session",)

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        # Globally by the primary key (creation order); one session's by checkpoint_latest_idx.
        if _filtered_by_session(request):
            return ("session_id", "-created_at", "-id")
        return ("-id",)

    def get_fields(self, request: HttpRequest, obj: Checkpoint | None = None) -> tuple[str, ...]:
        if obj is not None and obj.checkpoint_id:
            return ("session", "type", *THREAD_CHECKPOINT_FIELDS, "created_at")
        return ("session", "type", "data", "created_at")

    def get_readonly_fields(
        self, request: HttpRequest, obj: Checkpoint | None = None
    ) -> tuple[str, ...]:
        if obj is not None and obj.checkpoint_id:
            # A framework's checkpoint is the framework's to change, through its saver.
            return ("session", "type", *THREAD_CHECKPOINT_FIELDS, "created_at")
        return () if obj is None else ("session",)

    @admin.display(description="State")
    def state_size(self, checkpoint: Checkpoint) -> str:
        return f"{checkpoint.state_size:,} bytes of {checkpoint.state_type or 'unknown format'}"

    @admin.display(description="Session")
    def session_link(self, checkpoint: Checkpoint) -> str:
        return _session_link(checkpoint)

    def save_model(
        self, request: HttpRequest, obj: Checkpoint, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        stored = checkpoint_save(
            session_id=data["session"].pk,
            type=data["type"],
            data=data["data"],
            created_at=data["created_at"],
        )
        obj.pk = stored.pk
